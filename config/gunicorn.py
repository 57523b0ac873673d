"""gunicorn settings (``gunicorn -c config/gunicorn.py config.wsgi:application``).

Options not set here come from the command line or ``GUNICORN_CMD_ARGS``.
"""
import os

from gunicorn.glogging import Logger

from notifier.pii import PiiFilter

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None  # the API logs requests itself (JSON)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):
    """Prometheus multiprocess bookkeeping when a gunicorn worker exits."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        from notifier.metrics import process_identifier

        multiprocess.mark_process_dead(process_identifier(worker.pid))


def _log_format() -> str:
    debug = os.environ.get("DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    return os.environ.get("LOG_FORMAT") or ("plain" if debug else "json")


# gunicorn's own lines (start-up, worker exits, access log) in the same format as the app's.
if _log_format() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "notifier.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


class PiiMaskingLogger(Logger):
    """gunicorn's own error and access logs mask addresses like the app's logs do:
    a URL such as /api/v1/recipients/alice@example.com/ is logged masked."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(PiiFilter())


logger_class = PiiMaskingLogger
