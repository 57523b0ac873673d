import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from notifier.env import env_bool, env_int
from notifier.ids import uuid7


def test_uuid7_is_version_7_and_time_ordered():
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    assert first.version == 7 and second.version == 7
    assert first < second


def test_malformed_environment_values_fail_loudly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_FLAG", False)
    with pytest.raises(ImproperlyConfigured):
        env_int("X_NUM", 1)
