"""docker/: the compose file, the Dockerfile, Prometheus alert rules and the Grafana dashboard."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.metrics import MetricWrapperBase

from notifier import metrics
from tests.metrics_helpers import scrape

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
PRIORITY_QUEUES = ("notifications.high", "notifications.normal", "notifications.low")
COMPOSE_ENV = {"SECRET_KEY": "compose-test-secret", "FLOWER_BASIC_AUTH": "ops:pass"}


def _compose():
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


# --- compose --------------------------------------------------------------------------

def test_compose_file_validates_with_the_docker_compose_client():
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose client here; the structure is checked by the tests below")
    result = subprocess.run([*cli, "-f", str(DOCKER / "compose.yaml"), "config", "-q"], capture_output=True, text=True,
                            env={**os.environ, **COMPOSE_ENV}, cwd=DOCKER, timeout=60)
    assert result.returncode == 0, result.stderr
    # Required secrets are required: without them the file does not validate.
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    missing = subprocess.run([*cli, "-f", str(DOCKER / "compose.yaml"), "config", "-q"], capture_output=True,
                             text=True, env=env, cwd=DOCKER, timeout=60)
    assert missing.returncode != 0
    assert "SECRET_KEY" in missing.stderr


def test_compose_runs_every_part_with_one_worker_service_per_priority_and_one_beat():
    services = _compose()["services"]
    assert {"postgres", "rabbitmq", "redis", "migrate", "web", "worker-high", "worker-normal", "worker-low",
            "worker-maintenance", "beat", "flower", "prometheus"} <= set(services)
    for priority in ("high", "normal", "low"):
        command = " ".join(services[f"worker-{priority}"]["command"])
        assert f"-Q notifications.{priority} " in command
        assert "ports" not in services[f"worker-{priority}"], "workers scale with --scale: no fixed ports"
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "management" in services["rabbitmq"]["image"]
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    assert "--conf=config/flowerconfig.py" in services["flower"]["command"]
    # Every app process shares the metrics directory, which web's /metrics reads.
    for name in ("web", "worker-high", "worker-normal", "worker-low", "worker-maintenance", "beat"):
        assert "metrics:/var/lib/notifier/metrics" in services[name]["volumes"]
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/var/lib/notifier/metrics"
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]


def test_compose_images_are_pinned():
    for name, service in _compose()["services"].items():
        image = service.get("image", "")
        if "${NOTIFIER_IMAGE" in image:
            continue
        assert re.search(r":v?\d+\.\d+", image), f"{name} uses an unpinned image {image!r}"


# --- Dockerfile -----------------------------------------------------------------------------

def _dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def test_dockerfile_builds_its_python_layer_from_production_requirements_only():
    text = _dockerfile()
    installs = [line for line in text.splitlines() if "pip install" in line]
    assert installs, "no pip install in the Dockerfile"
    assert all("-r /tmp/requirements/production.txt" in line for line in installs), installs
    assert "COPY requirements/ /tmp/requirements/" in text
    assert "COPY --from=build /opt/venv /opt/venv" in text
    # The requirements it installs are all pinned, all the way down the -r chain.
    seen = []

    def read(path: Path):
        for raw in path.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith(("-r ", "-c ")):
                read(path.parent / line[3:].strip())
            else:
                seen.append(line)

    read(ROOT / "requirements" / "production.txt")
    names = {re.split(r"[\[=]", req)[0].lower() for req in seen}
    assert {"django", "celery", "gunicorn", "flower", "sentry-sdk", "prometheus-client", "psycopg"} <= names
    unpinned = [req for req in seen if "==" not in req]
    assert not unpinned, unpinned


def test_dockerfile_runs_as_a_non_root_user_from_a_pinned_base_with_a_healthcheck():
    text = _dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+$", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text
    assert (ROOT / ".dockerignore").read_text().count(".env") >= 1


# --- Prometheus and Grafana ---------------------------------------------------------------------

ALERTS = ("NotifierQueueBacklogGrowing", "NotifierDeadLettersPresent", "NotifierProviderFailureRateHigh",
          "NotifierHighPriorityLatencyHigh", "NotifierQueueWithoutConsumers", "NotifierCircuitBreakerOpen")


def _rules():
    groups = yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_cover_backlog_dead_letters_failures_latency_consumers_and_breakers():
    rules = {rule["alert"]: rule for rule in _rules()}
    assert set(ALERTS) <= set(rules)
    for rule in rules.values():
        assert rule["expr"].strip() and rule["annotations"]["summary"] and rule["labels"]["severity"]
    assert 'priority="high"' in rules["NotifierHighPriorityLatencyHigh"]["expr"]
    assert "> 1" in rules["NotifierHighPriorityLatencyHigh"]["expr"]


# `make test` puts promtool into the virtualenv (notifier/devtools/ensure_test_tools.sh) unless it is on PATH.
PROMTOOL = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_alert_rules_pass_promtool_checks_and_their_unit_tests():
    prom = DOCKER / "prometheus"
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"],
                 ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run([PROMTOOL, *args], cwd=prom, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def _exported_names() -> set[str]:
    names = {"up"}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                base = family.name
                names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    names |= {name for name, _ in scrape(Client())}  # gauges read at scrape time
    names |= {"notifier_circuit_breaker_state", "notifier_circuit_breaker_open"}  # only when breakers exist
    return names


@pytest.mark.django_db
def test_alerts_and_dashboard_only_use_metrics_that_notifier_exports():
    exported = _exported_names()
    dashboard = json.loads((DOCKER / "grafana" / "notifier.json").read_text())
    exprs = [rule["expr"] for rule in _rules()]
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(notifier_[a-z_]+|up)\b", expr)}
    assert used, "no metric found in the rules and dashboard"
    assert used <= exported, used - exported
    assert {"notifier_notifications_total", "notifier_queue_messages", "notifier_delivery_latency_seconds_bucket",
            "notifier_circuit_breaker_state", "notifier_http_requests_total"} <= used


def test_beats_jobs_go_to_the_maintenance_queue_which_procfile_and_compose_each_give_a_worker():
    from django.conf import settings

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["options"]["queue"] == "notifications.maintenance"
    for task in ("notifier.dispatch_due", "notifier.sweep", "notifier.idempotency_purge", "notifier.partitions"):
        assert settings.CELERY_TASK_ROUTES[task]["queue"] == "notifications.maintenance"
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} >= {
        "notifier.dispatch_due", "notifier.sweep", "notifier.partitions"}
    assert "notifications.maintenance" in {q.name for q in settings.CELERY_TASK_QUEUES}
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert "-Q notifications.maintenance " in procfile["worker-maintenance"]
    assert "--pool threads" in procfile["worker-maintenance"]
    command = " ".join(_compose()["services"]["worker-maintenance"]["command"])
    assert "-Q notifications.maintenance " in command
    for name in ("worker-high", "worker-normal", "worker-low"):
        assert "maintenance" not in procfile[name]
