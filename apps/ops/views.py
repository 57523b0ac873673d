"""``/healthz``, ``/readyz`` and ``/metrics``: no API key, plain Django views."""
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from . import collectors
from .readiness import public_readiness


@require_GET
def healthz(request):
    """The process is alive and serving requests (nothing else is checked)."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    """200 when PostgreSQL, RabbitMQ and Redis all answer; 503 naming what is down (checked at most once a
    second per process; no host, port or error text in the answer)."""
    result = public_readiness()
    return JsonResponse(result, status=200 if result["status"] == "ok" else 503)


@require_GET
def metrics(request):
    """Prometheus exposition: counters summed over every process, gauges read now."""
    return HttpResponse(collectors.render(), content_type=CONTENT_TYPE_LATEST)
