from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.NotificationListView.as_view(), name="notification-list"),
    # Fixed names before `notifications/<str:key>/`, which would take them for a channel or an id.
    path("notifications/cancel/", views.NotificationGroupCancelView.as_view(), name="notification-cancel-group"),
    path("notifications/batch/", views.NotificationBatchView.as_view(), name="notification-batch"),
    path("notifications/<str:key>/", views.NotificationResourceView.as_view(), name="notification-resource"),
    path("notifications/<str:key>/cancel/", views.NotificationCancelView.as_view(), name="notification-cancel"),
]
