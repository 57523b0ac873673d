from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.NotificationListView.as_view(), name="notification-list"),
    path("notifications/batch/", views.NotificationBatchView.as_view(), name="notification-batch"),
    path("notifications/<str:key>/", views.NotificationResourceView.as_view(), name="notification-resource"),
]
