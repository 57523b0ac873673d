"""Worker processes move their start-up objects out of the garbage collector's walks."""
import gc
import sys
import weakref

from celery.signals import worker_process_init, worker_ready

from notifier.process import freeze_startup_objects


def _receivers(signal):
    return [r() if isinstance(r, weakref.ReferenceType) else r for _, r in signal.receivers]


def test_it_freezes_the_objects_alive_when_called():
    gc.unfreeze()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_every_worker_process_freezes_once_started():
    import config.celery_app  # noqa: F401 - connects the handlers

    handler = sys.modules["config.celery_app"]._freeze_startup_objects
    assert handler in _receivers(worker_ready)  # the main process (threads and solo pools)
    assert handler in _receivers(worker_process_init)  # prefork children
