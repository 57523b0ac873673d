"""Settings for the test suite (``DJANGO_SETTINGS_MODULE=config.settings.test``): ``local`` plus the below.

Tests share the machine's PostgreSQL, RabbitMQ and Redis with other runs, so
they use their own database, RabbitMQ vhost and Redis database, named from
``NOTIFIER_TEST_NAMESPACE`` (default ``test``). Worker and beat processes
started by integration tests load this same module, so they see the same
database and broker.
"""
import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

_NS = os.environ.get("NOTIFIER_TEST_NAMESPACE", "test")
_DB = f"notifier_{_NS}"
_VHOST = os.environ.get("NOTIFIER_TEST_VHOST") or f"notifier_{_NS}"  # another vhost: see test_quorum_queues
_REDIS_DB = os.environ.get("NOTIFIER_TEST_REDIS_DB", "15")

# NOTIFIER_TEST_DATABASE_URL: a process a test starts may reach the test database another way (a proxy
# that cuts it); the database's name is the namespace's whatever the URL says.
os.environ["DATABASE_URL"] = os.environ.get("NOTIFIER_TEST_DATABASE_URL") or f"postgres://127.0.0.1:5432/{_DB}"
# NOTIFIER_TEST_BROKER_URL: a process a test starts may be pointed elsewhere (a broker that never answers).
os.environ["CELERY_BROKER_URL"] = (os.environ.get("NOTIFIER_TEST_BROKER_URL")
                                   or f"amqp://guest:guest@127.0.0.1:5672/{_VHOST}")
os.environ["REDIS_URL"] = f"redis://127.0.0.1:6379/{_REDIS_DB}"
os.environ.setdefault("NOTIFIER_RETRY_BACKOFF_BASE", "0.05")
os.environ.setdefault("NOTIFIER_RETRY_BACKOFF_MAX", "0.5")
os.environ.setdefault("NOTIFIER_DISPATCH_INTERVAL", "1")  # whole seconds: see CELERY_BEAT_SCHEDULE
os.environ.setdefault("NOTIFIER_SWEEP_INTERVAL", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

# Prometheus multiprocess directory: a fresh one per test run, inherited by the
# worker processes tests start, so /metrics in the test process sees their counters.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import atexit
    import shutil
    import tempfile

    _PROM_DIR = tempfile.mkdtemp(prefix=f"notifier-{_NS}-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _PROM_DIR
    atexit.register(shutil.rmtree, _PROM_DIR, True)

from .local import *  # noqa: E402,F401,F403
from .local import DATABASES  # noqa: E402

DATABASES["default"]["TEST"] = {"NAME": _DB}
DATABASES["default"]["NAME"] = _DB
ALLOWED_HOSTS = ["*"]
TEST_VHOST = _VHOST
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Test clock (recipients: quiet hours) ------------------------------------------
# Worker processes started by integration tests get the policy clock shifted by
# NOTIFIER_TEST_CLOCK_OFFSET seconds (notifier.clock); production settings never read it.
if os.environ.get("NOTIFIER_TEST_CLOCK_OFFSET"):
    from notifier import clock as _clock

    _clock.set_offset(float(os.environ["NOTIFIER_TEST_CLOCK_OFFSET"]))
