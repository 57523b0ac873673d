from django.urls import path

from . import views

urlpatterns = [
    path("topics/", views.TopicListView.as_view(), name="topic-list"),
    path("topics/<str:key>/", views.TopicView.as_view(), name="topic"),
    path("topics/<str:key>/subscribers/", views.TopicSubscribersView.as_view(), name="topic-subscribers"),
]
