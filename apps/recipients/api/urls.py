from django.urls import path

from . import views

# The in-app inbox (``recipients/<id>/inbox/``) and recipient tokens (``recipients/<id>/token/``) live elsewhere.
urlpatterns = [
    path("recipients/<str:external_id>/", views.RecipientView.as_view(), name="recipient"),
    path("recipients/<str:external_id>/devices/", views.DeviceListView.as_view(), name="recipient-devices"),
    path("recipients/<str:external_id>/devices/<str:device_id>/", views.DeviceView.as_view(),
         name="recipient-device"),
    path("recipients/<str:external_id>/preferences/", views.PreferencesView.as_view(),
         name="recipient-preferences"),
]
