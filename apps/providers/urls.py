from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/webhooks/twilio/status/", views.twilio_status_webhook, name="twilio-status-webhook"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
