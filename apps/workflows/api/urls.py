from django.urls import path

from . import views

urlpatterns = [
    path("digests/", views.OpenDigestListView.as_view(), name="digest-list"),
    path("notifications/<str:key>/fallback/cancel/", views.FallbackCancelView.as_view(), name="fallback-cancel"),
]
