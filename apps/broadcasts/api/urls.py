from django.urls import path

from . import views

urlpatterns = [
    path("broadcasts/", views.BroadcastListView.as_view(), name="broadcast-list"),
    path("broadcasts/<str:key>/", views.BroadcastView.as_view(), name="broadcast"),
    path("broadcasts/<str:key>/cancel/", views.BroadcastCancelView.as_view(), name="broadcast-cancel"),
]
