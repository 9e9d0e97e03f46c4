"""Records every request the Django app answers, for the tests' assertions and
failure messages (notably tessera's back-channel logout POSTs)."""

from __future__ import annotations

from . import Received, record_received


def record_requests(get_response):
    def middleware(request):
        logout_request = request.POST.get("logoutRequest") if request.method == "POST" else None
        response = get_response(request)
        record_received(
            Received(
                method=request.method,
                target=request.get_full_path(),
                ticket=request.GET.get("ticket"),
                logout_request=logout_request,
                status=response.status_code,
            )
        )
        return response

    return middleware
