from django.urls import path

from . import views

urlpatterns = [
    path("webhooks/endpoints/", views.EndpointListView.as_view(), name="webhook-endpoint-list"),
    path("webhooks/endpoints/<str:endpoint_id>/", views.EndpointDetailView.as_view(), name="webhook-endpoint"),
    path("webhooks/endpoints/<str:endpoint_id>/enable/", views.EndpointEnableView.as_view(),
         name="webhook-endpoint-enable"),
]
