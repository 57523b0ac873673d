"""Every process reads the same dotenv under its environment: Django's settings, Flower's and
gunicorn's configs (which run before Django's settings) and the Procfile's own variables."""
import os
import subprocess
import sys
from pathlib import Path

from notifier.env import PROJECT_ROOT, dotenv_path

ROOT = Path(__file__).resolve().parents[2]


def _run(args, dotenv: Path, **env):
    """A process with a user's environment (no test settings) and ``dotenv`` as its .env."""
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                          env={**base, "NOTIFIER_DOTENV": str(dotenv), **env})


def test_the_dotenv_is_the_project_roots_unless_notifier_dotenv_names_another(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFIER_DOTENV", raising=False)
    assert dotenv_path() == PROJECT_ROOT / ".env" == ROOT / ".env"
    monkeypatch.setenv("NOTIFIER_DOTENV", str(tmp_path / "other.env"))
    assert dotenv_path() == tmp_path / "other.env"


def test_flower_reads_its_credentials_from_the_dotenv_when_the_broker_url_is_exported(tmp_path):
    """Issue 21: with CELERY_BROKER_URL exported, Celery never loaded Django's settings before Flower's
    config read FLOWER_BASIC_AUTH, so the credentials in .env were not seen and Flower exited."""
    dotenv = tmp_path / "dotenv"
    dotenv.write_text("DEBUG=1\nFLOWER_BASIC_AUTH=ops:from-dotenv\n")
    code = "import runpy; print(runpy.run_path('config/flowerconfig.py')['basic_auth'])"
    result = _run(["-c", code], dotenv, CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/elsewhere")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['ops:from-dotenv']"

    refused = _run(["-c", code], dotenv, CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/elsewhere",
                   FLOWER_BASIC_AUTH="")  # set (empty) in the environment: the dotenv does not override it
    assert refused.returncode != 0
    assert "Flower needs FLOWER_BASIC_AUTH=user:password" in refused.stderr


def test_make_run_gives_the_procfile_the_dotenv_under_the_environment(tmp_path):
    """The Procfile's ${VARIABLES} are expanded by the shell honcho starts: make run exports the
    dotenv first (notifier.devtools.with_dotenv), never over the real environment."""
    dotenv = tmp_path / "dotenv"
    dotenv.write_text("WEB_PORT=9123\nDEBUG=1\n")
    result = _run(["-m", "notifier.devtools.with_dotenv", "sh", "-c", 'echo "$WEB_PORT $DEBUG"'], dotenv, DEBUG="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "9123 0"


def test_email_goes_to_the_smtp_sinks_port_when_it_is_moved_unless_email_port_is_set(tmp_path):
    dotenv = tmp_path / "dotenv"
    dotenv.write_text("DEBUG=1\n")
    code = "from config import settings; print(settings.EMAIL_PORT)"
    assert _run(["-c", code], dotenv).stdout.strip() == "1025"
    assert _run(["-c", code], dotenv, SMTP_SINK_PORT="2525").stdout.strip() == "2525"
    assert _run(["-c", code], dotenv, SMTP_SINK_PORT="2525", EMAIL_PORT="587").stdout.strip() == "587"
