"""URLs as in the django-cas-ng README, plus the protected page."""

from django.urls import path
from django_cas_ng import views as cas_views

from . import views

urlpatterns = [
    path("accounts/login", cas_views.LoginView.as_view(), name="cas_ng_login"),
    path("accounts/logout", cas_views.LogoutView.as_view(), name="cas_ng_logout"),
    path("accounts/callback", cas_views.CallbackView.as_view(), name="cas_ng_proxy_callback"),
    path("", views.index),
    path("profile/", views.profile),
    path("goodbye/", views.goodbye),
]
