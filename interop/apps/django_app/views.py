"""The Django app's own pages, rendered like the Flask apps' (``apps._common``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse

from .._common import page, whoami_page
from . import CLIENT, LOGOUT_PATH, PROTECTED_PATH


def _response(rendered) -> HttpResponse:
    document, status, headers = rendered
    return HttpResponse(document, status=status, content_type=headers["Content-Type"])


def index(request):
    return _response(page("django-cas-ng demo", f'<p><a href="{PROTECTED_PATH}">Profile</a></p>'))


@login_required
def profile(request):
    # django-cas-ng keeps the attributes python-cas returned in the session.
    attributes = request.session.get("attributes")
    return _response(whoami_page(CLIENT, request.user.get_username(), attributes, LOGOUT_PATH))


def goodbye(request):
    return _response(page("Signed out", "<p>You are signed out.</p>"))
