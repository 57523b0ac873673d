"""Worker processes move their start-up objects out of the garbage collector's walks."""
import gc
import sys
import weakref

import pytest

from celery.signals import worker_process_init, worker_ready

from notifier.process import DEFAULT_GC_THRESHOLD, freeze_startup_objects


def _receivers(signal):
    return [r() if isinstance(r, weakref.ReferenceType) else r for _, r in signal.receivers]


@pytest.fixture
def restoring_gc():
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_it_freezes_the_objects_alive_when_called(monkeypatch, restoring_gc):
    monkeypatch.delenv("NOTIFIER_GC_THRESHOLD", raising=False)
    freeze_startup_objects()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == DEFAULT_GC_THRESHOLD


def test_the_young_collection_threshold_comes_from_the_environment(monkeypatch, restoring_gc):
    monkeypatch.setenv("NOTIFIER_GC_THRESHOLD", "700")
    freeze_startup_objects()
    assert gc.get_threshold()[0] == 700
    monkeypatch.setenv("NOTIFIER_GC_THRESHOLD", "many")  # not a number: the default
    freeze_startup_objects()
    assert gc.get_threshold()[0] == DEFAULT_GC_THRESHOLD


def test_every_worker_process_freezes_once_started():
    import config.celery_app  # noqa: F401 - connects the handlers

    handler = sys.modules["config.celery_app"]._freeze_startup_objects
    assert handler in _receivers(worker_process_init)  # prefork children
    assert handler in _receivers(worker_ready)  # the main process (threads and solo pools)
