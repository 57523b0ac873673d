"""Production settings: DEBUG off needs a SECRET_KEY, and with it Django's deploy checks pass
(secure cookies, HSTS, nosniff, X-Frame-Options); the remaining opt-ins are environment switches."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFIER_", "SECURE_", "DJANGO_"))}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "NOTIFIER_SMS_PROVIDERS": "console",
                 "NOTIFIER_PUSH_PROVIDERS": "console", **env})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


def _prod(**env):
    return {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "notifier.example.com", **env}


def test_debug_off_without_a_secret_key_refuses_to_start():
    result = _run("manage.py", "check", DEBUG="0", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_deploy_checks_leave_only_the_documented_opt_ins():
    result = _run("manage.py", "check", "--deploy", **_prod())
    found = {line.split(")")[0].split("(")[-1] for line in result.stderr.splitlines() if "(security." in line}
    assert found == {"security.W005", "security.W008", "security.W021"}, result.stderr


def test_deploy_checks_pass_with_the_opt_ins_switched_on():
    result = _run("manage.py", "check", "--deploy", "--fail-level", "WARNING",
                  **_prod(SECURE_SSL_REDIRECT="1", SECURE_HSTS_INCLUDE_SUBDOMAINS="1", SECURE_HSTS_PRELOAD="1"))
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_defaults_and_proxy_header():
    code = ("from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SECURE_HSTS_SECONDS, s.ALLOWED_HOSTS, s.SECURE_PROXY_SSL_HEADER)")
    result = _run("-c", "import django; django.setup(); " + code,
                  **_prod(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https"))
    assert result.stdout.strip() == (
        "False True True 31536000 ['notifier.example.com'] ('HTTP_X_FORWARDED_PROTO', 'https')"), result.stderr
