from django.urls import path

from ..stream import inbox_stream
from . import views

_item = "recipients/<str:external_id>/inbox/<str:item_id>"

urlpatterns = [
    path("recipients/<str:external_id>/inbox/", views.InboxListView.as_view(), name="inbox-list"),
    path("recipients/<str:external_id>/inbox/read-all/", views.InboxReadAllView.as_view(), name="inbox-read-all"),
    path(f"{_item}/read/", views.InboxItemActionView.as_view(action="read"), name="inbox-read"),
    path(f"{_item}/unread/", views.InboxItemActionView.as_view(action="unread"), name="inbox-unread"),
    path(f"{_item}/archive/", views.InboxItemActionView.as_view(action="archive"), name="inbox-archive"),
    path(f"{_item}/unarchive/", views.InboxItemActionView.as_view(action="unarchive"), name="inbox-unarchive"),
    path("recipients/<str:external_id>/token/", views.RecipientTokenView.as_view(), name="recipient-token"),
    path("inbox/stream/", inbox_stream, name="inbox-stream"),
]
