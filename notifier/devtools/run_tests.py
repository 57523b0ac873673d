"""`make test` without PYTEST_ARGS: the whole suite as two pytest runs at once.

The integration tests (tests/integration) spend most of their time waiting for the worker, beat and web
processes they start, for brokers killed on purpose and for SMTP peers that answer slowly; the rest (the
unit and app tests) spend theirs on the CPU. Run one after the other they took 16.5 minutes
on a 2-core machine whose CPU is a quarter slower than the one that took 14; side by side, each on its
own database, RabbitMQ vhost and Redis database (``NOTIFIER_TEST_NAMESPACE``, config/settings/test.py),
the unit and app run fills the integration run's waits.

The integration run's output is streamed; the unit and app run's is written to a file and printed when it
ends. The exit status is the first non-zero of the two. ``make test PYTEST_ARGS=...`` runs one pytest
with those arguments instead.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    namespace = os.environ.get("NOTIFIER_TEST_NAMESPACE", "test")
    redis_db = int(os.environ.get("NOTIFIER_TEST_REDIS_DB", "15"))
    pytest = [sys.executable, "-m", "pytest"]
    side_env = {**os.environ, "NOTIFIER_TEST_NAMESPACE": f"{namespace}_app",
                "NOTIFIER_TEST_REDIS_DB": str(redis_db - 1 if redis_db > 0 else redis_db + 1)}
    side_env.pop("NOTIFIER_TEST_VHOST", None)  # a vhost set for the run is the integration run's, not shared
    with tempfile.NamedTemporaryFile("w+b", prefix="notifier-unit-app-", suffix=".log") as log:
        print(f"unit and app tests: namespace {side_env['NOTIFIER_TEST_NAMESPACE']}, output at the end "
              f"({log.name}); integration tests: namespace {namespace}, output below", flush=True)
        # Everything but the integration tests, so a test directory added later is not left out.
        side = subprocess.Popen([*pytest, "tests", "--ignore=tests/integration"], cwd=ROOT, env=side_env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            integration = subprocess.call([*pytest, "tests/integration"], cwd=ROOT)
            side_status = side.wait()
        except BaseException:
            side.kill()
            side.wait()
            raise
        log.seek(0)
        print("\n===== unit and app tests =====", flush=True)
        sys.stdout.buffer.write(log.read())
        sys.stdout.flush()
    print(f"\nintegration tests: {'passed' if integration == 0 else f'FAILED ({integration})'}; "
          f"unit and app tests: {'passed' if side_status == 0 else f'FAILED ({side_status})'}", flush=True)
    return integration or side_status


if __name__ == "__main__":
    sys.exit(main())
