from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from apps.inbox.demo import inbox_demo
from apps.api import errors

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path("api/v1/", include("apps.notifications.api.urls")),
    path("api/v1/", include("apps.schedules.api.urls")),
    path("api/v1/", include("apps.recipients.api.urls")),
    path("", include("apps.providers.urls")),
    path("", include("apps.ops.urls")),  # /healthz, /readyz, /metrics (no API key)
    path("api/v1/", include("apps.inbox.api.urls")),
    path("api/v1/", include("apps.webhooks.api.urls")),
    path("api/v1/", include("apps.topics.api.urls")),
    path("api/v1/", include("apps.broadcasts.api.urls")),
    path("api/v1/", include("apps.workflows.api.urls")),
    path("demo/inbox/", inbox_demo, name="inbox-demo"),
]

handler400 = errors.json_bad_request
handler403 = errors.json_forbidden
handler404 = errors.json_not_found
handler500 = errors.json_server_error
