from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.NotificationListView.as_view(), name="notification-list"),
    path("notifications/<str:key>/", views.NotificationResourceView.as_view(), name="notification-resource"),
]
