"""``manage.py serve_metrics --port 9808``: this host's worker metrics over HTTP.

On one host every process writes to the shared PROMETHEUS_MULTIPROC_DIR and
the API's /metrics adds them up. A worker-only host (see docs/scaling.md) has
its own directory and no API: run this next to its workers and let Prometheus
scrape it. It serves only the counters and histograms of the processes on this
host (queue depths and breaker states come from the API's /metrics).
"""
import time

from django.core.management.base import BaseCommand, CommandError
from prometheus_client import CollectorRegistry, start_http_server

from notifier import metrics


class Command(BaseCommand):
    help = "Serve the Prometheus metrics of this host's processes (PROMETHEUS_MULTIPROC_DIR) on --port."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9808)
        parser.add_argument("--address", default="0.0.0.0")

    def handle(self, *args, port, address, **options):
        if not metrics.MULTIPROC_DIR:
            raise CommandError("PROMETHEUS_MULTIPROC_DIR is not set: there is nothing to serve")
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=metrics.MULTIPROC_DIR)
        server, thread = start_http_server(port, addr=address, registry=registry)
        self.stdout.write(f"serving {metrics.MULTIPROC_DIR} on http://{address}:{server.server_port}/metrics",
                          ending="\n")
        self.stdout.flush()
        try:
            while thread.is_alive():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
