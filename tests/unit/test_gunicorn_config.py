"""config/gunicorn.py: one listening socket per web process, no access log unless asked for, and the
same .env as Django's settings."""
import runpy
from pathlib import Path

CONFIG = str(Path(__file__).resolve().parents[2] / "config" / "gunicorn.py")


def _load(monkeypatch, **env):
    for name in ("GUNICORN_REUSE_PORT", "GUNICORN_ACCESSLOG", "GUNICORN_KEEPALIVE", "LOG_FORMAT", "DEBUG", "GUNICORN_BIND",
                 "WEB_PORT", "WEB_CONNECTIONS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFIER_DOTENV", "/nonexistent/notifier-dotenv")  # not the repo's .env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(CONFIG)


def test_each_web_process_listens_on_its_own_socket_unless_turned_off(monkeypatch):
    assert _load(monkeypatch)["reuse_port"] is True
    assert _load(monkeypatch, GUNICORN_REUSE_PORT="0")["reuse_port"] is False


def test_requests_are_not_logged_unless_an_access_log_is_asked_for(monkeypatch):
    quiet = _load(monkeypatch, LOG_FORMAT="json")
    assert quiet["accesslog"] is None
    assert quiet["logconfig_dict"]["loggers"]["gunicorn.access"]["handlers"] == []

    logged = _load(monkeypatch, LOG_FORMAT="json", GUNICORN_ACCESSLOG="-")
    assert logged["logconfig_dict"]["loggers"]["gunicorn.access"]["handlers"] == ["console"]


def test_the_logger_builds_no_access_record_unless_an_access_log_is_asked_for(monkeypatch):
    """gunicorn counts any logging config as asking for an access log and formats a record per request."""
    from types import SimpleNamespace

    logger_class = _load(monkeypatch, LOG_FORMAT="json")["logger_class"]
    for accesslog, enabled in ((None, False), ("-", True)):
        logger = logger_class.__new__(logger_class)
        logger.cfg = SimpleNamespace(accesslog=accesslog, logconfig=None, logconfig_dict={"version": 1},
                                     logconfig_json=None, syslog=False)
        assert logger._compute_access_log_enabled() is enabled


def test_web_processes_freeze_their_start_up_objects(monkeypatch):
    import gc

    config = _load(monkeypatch)
    gc.unfreeze()
    try:
        config["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_idle_keep_alive_connections_stay_open_longer_than_client_pools_keep_them(monkeypatch):
    assert _load(monkeypatch)["keepalive"] == 75
    assert _load(monkeypatch, GUNICORN_KEEPALIVE="10")["keepalive"] == 10


def test_the_log_format_follows_debug_when_debug_is_only_in_the_dotenv(monkeypatch, tmp_path):
    """gunicorn reads its config before Django's settings: it loads .env itself, under the environment."""
    dotenv = tmp_path / "dotenv"
    dotenv.write_text("DEBUG=1\n")
    assert "logconfig_dict" not in _load(monkeypatch, NOTIFIER_DOTENV=str(dotenv))  # plain, like the app's
    assert "logconfig_dict" in _load(monkeypatch, NOTIFIER_DOTENV=str(dotenv), DEBUG="0")  # the environment wins


def test_the_config_is_the_procfiles_asgi_set_up(monkeypatch):
    """The Procfile's web line names the app and this file only: worker class, port and connections are here."""
    procfile = dict(line.split(": ", 1) for line in (Path(CONFIG).parents[1] / "Procfile").read_text().splitlines()
                    if line.strip())
    assert procfile["web"] == ".venv/bin/gunicorn config.asgi:application -c config/gunicorn.py"
    config = _load(monkeypatch)
    assert (config["worker_class"], config["bind"], config["workers"], config["worker_connections"]) == (
        "asgi", "0.0.0.0:8000", 2, 1000)
    assert config["control_socket_disable"] is True
    moved = _load(monkeypatch, WEB_PORT="9123", WEB_CONNECTIONS="50", WEB_CONCURRENCY="3")
    assert (moved["bind"], moved["worker_connections"], moved["workers"]) == ("0.0.0.0:9123", 50, 3)
    assert _load(monkeypatch, WEB_PORT="9123", GUNICORN_BIND="127.0.0.1:7000")["bind"] == "127.0.0.1:7000"
