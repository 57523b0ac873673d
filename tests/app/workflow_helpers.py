"""What tests/app/test_digests.py and test_fallback.py share."""
import threading
from contextlib import contextmanager

from django.db import connection, transaction
from rest_framework import status
from rest_framework.test import APIClient

from apps.apikeys.services import api_key_create


def post(api, channel="in_app", expect=status.HTTP_202_ACCEPTED, **body):
    response = api.post(f"/api/v1/notifications/{channel}/", body, format="json")
    assert response.status_code == expect, response.content
    return response.json()


def project_client(project: str) -> APIClient:
    """A client with a key of ``project`` (made on first use) that has every scope."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(name=project, project=project).raw}")
    return client


@contextmanager
def locked_by_another_dispatcher(model):
    """Another connection holds the only ``model`` row with ``FOR UPDATE`` until the block ends."""
    locked, done = threading.Event(), threading.Event()

    def other_dispatcher():
        try:
            with transaction.atomic():
                model.objects.select_for_update().get()
                locked.set()
                done.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_dispatcher)
    thread.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        done.set()
        thread.join()
