"""gunicorn settings of the API: the set-up the Procfile's ``web`` runs (``gunicorn config.asgi:application
-c config/gunicorn.py``), as do docker/ and the tests' servers.

gunicorn's native ASGI worker serves ``config.asgi``: async paths (the inbox stream) on each web process's
event loop, everything else as WSGI on ``NOTIFIER_WEB_THREADS`` threads (config/hybrid.py). ``config.wsgi``
on the gthread worker still works (``--worker-class gthread config.wsgi:application``; ``GUNICORN_THREADS``
threads each). Command-line options and ``GUNICORN_CMD_ARGS`` override what is set here.

This file is read before Django's settings, so it loads the project's ``.env`` (or ``NOTIFIER_DOTENV``)
itself, under the environment, as the settings do.
"""

from gunicorn.glogging import Logger

from notifier.env import env_bool, env_int, env_str, load_project_dotenv, log_format
from notifier.pii import PiiFilter

load_project_dotenv()

bind = env_str("GUNICORN_BIND") or f"0.0.0.0:{env_int('WEB_PORT', 8000)}"
workers = env_int("WEB_CONCURRENCY", 2)
worker_class = "asgi"
# Connections each web process serves at once (the ASGI worker's event loop).
worker_connections = env_int("WEB_CONNECTIONS", 1000)
threads = env_int("GUNICORN_THREADS", 4)  # the gthread worker's (config.wsgi) only
# gunicorn's control socket (gunicornc) is not used: no socket file per server.
control_socket_disable = True
timeout = env_int("GUNICORN_TIMEOUT", 30)
accesslog = env_str("GUNICORN_ACCESSLOG") or None  # the API logs requests itself (JSON)
forwarded_allow_ips = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1")
backlog = env_int("GUNICORN_BACKLOG", 2048)
# How long an idle keep-alive connection stays open. gunicorn's default, 2 s, is shorter than the idle time
# after which client pools stop reusing a connection (httpx 5 s, aiohttp 15 s, requests/urllib3 never), so a
# client that sent again about 2 s after its last request raced the server's close: requests raised
# ConnectionError, and every client paid a new TCP connection after each pause. 75 s, as nginx.
keepalive = env_int("GUNICORN_KEEPALIVE", 75)
# Each web process listens on a socket of its own (SO_REUSEPORT; gunicorn then opens none in the
# master) and the kernel spreads new connections over them. On one shared socket the first process
# to wake accepts a whole burst (asyncio accepts up to 100 per wake-up): 32 clients opening their
# keep-alive connections at once landed 27 to 5 on two processes (make bench --mode single), so one
# process did the work on one core while the other idled. GUNICORN_REUSE_PORT=0 goes back to one socket.
reuse_port = env_bool("GUNICORN_REUSE_PORT", True)


def child_exit(server, worker):
    """Prometheus multiprocess bookkeeping when a gunicorn worker exits."""
    from notifier.metrics import MULTIPROC_DIR, process_identifier

    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process_identifier(worker.pid))


def worker_exit(server, worker):
    """A web process is leaving (restart, shutdown): finish the group committer's requests and publish
    what they left to publish, rather than leave those rows to the sweep."""
    try:
        from apps.notifications.intake.groupcommit import group_committer_stop

        group_committer_stop()
    except Exception:  # noqa: BLE001 - never block the exit; the sweep republishes what is left
        server.log.exception("could not flush the web process's pending publishes")


def post_worker_init(worker):
    """Once a web process has loaded Django and the apps: keep their objects out of the garbage
    collector's full collections (see notifier/process.py; measured for workers, the same
    import-time objects live in every web process)."""
    from notifier.process import freeze_startup_objects

    freeze_startup_objects()


# gunicorn's own lines (start-up, worker exits, access log) in the same format as the app's.
if log_format() == "json":  # the rule of LOG_FORMAT in Django's settings
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "notifier.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # The access log only when asked for (GUNICORN_ACCESSLOG): with a handler here gunicorn's
            # ASGI worker writes a line per request even without --access-logfile, and at hundreds of
            # requests a second formatting and piping them cost the API a good part of its CPU.
            "gunicorn.access": {"handlers": ["console"] if accesslog else [], "level": "INFO", "propagate": False},
        },
    }


class PiiMaskingLogger(Logger):
    """gunicorn's own error and access logs mask addresses like the app's logs do:
    a URL such as /api/v1/recipients/alice@example.com/ is logged masked."""

    def _compute_access_log_enabled(self):
        # gunicorn counts a logging config (ours, for the JSON format) as asking for an access log,
        # and then builds a record per request that no handler writes: only GUNICORN_ACCESSLOG asks.
        return bool(self.cfg.accesslog)

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(PiiFilter())


logger_class = PiiMaskingLogger
