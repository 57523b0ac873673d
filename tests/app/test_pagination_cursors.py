"""Every list endpoint pages with a cursor (apps/api/pagination.py): a cursor that is not one of that list's,
whether garbage or forged with a position its ordering field cannot hold, answers 400 with a ``cursor``
field error before it reaches a query (never a database error, never a 500)."""
import base64
from urllib.parse import urlencode

import pytest
from rest_framework import status

from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db

TOPIC = "/api/v1/topics/product-updates/"
# Each list endpoint, and a position its ordering field cannot hold.
LISTS = [
    ("/api/v1/notifications/", "not-a-uuid"),
    ("/api/v1/schedules/", "abc"),
    ("/api/v1/webhooks/endpoints/", "not-a-uuid"),
    ("/api/v1/recipients/u1/inbox/", "not-a-uuid"),
    ("/api/v1/topics/", "key\x00"),
    (TOPIC + "subscribers/", "9" * 40),
]


def _cursor(**tokens) -> str:
    return base64.b64encode(urlencode(tokens).encode()).decode()


@pytest.fixture
def lists(api):
    """Something on each list: a recipient with an inbox, a topic."""
    recipient = Recipient.objects.create(external_id="u1")
    assert api.put(TOPIC, {"name": "Product updates"}, format="json").status_code == status.HTTP_201_CREATED
    assert api.post(TOPIC + "subscribers/", {"recipients": [recipient.external_id]},
                   format="json").status_code < 300
    return api


def _assert_cursor_error(response):
    assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content
    assert list(response.json()["errors"]) == ["cursor"]


@pytest.mark.parametrize(("path", "position"), LISTS)
def test_a_list_answers_a_valid_first_page(lists, path, position):
    response = lists.get(path)
    assert response.status_code == status.HTTP_200_OK, response.content
    assert "results" in response.json() and "next" in response.json()


@pytest.mark.parametrize(("path", "position"), LISTS)
@pytest.mark.parametrize("cursor", ["garbage!", "%%%", base64.b64encode(b"\xff\xfe").decode()])
def test_a_garbage_cursor_is_a_400_on_the_cursor_field(lists, path, position, cursor):
    _assert_cursor_error(lists.get(path, {"cursor": cursor}))


@pytest.mark.parametrize(("path", "position"), LISTS)
def test_a_forged_position_is_a_400_on_the_cursor_field(lists, path, position):
    _assert_cursor_error(lists.get(path, {"cursor": _cursor(p=position)}))
    _assert_cursor_error(lists.get(path, {"cursor": _cursor(p=position, r=1)}))


@pytest.mark.parametrize(("path", "position"), LISTS)
def test_a_forged_offset_or_direction_is_a_400_on_the_cursor_field(lists, path, position):
    _assert_cursor_error(lists.get(path, {"cursor": _cursor(o=-1)}))
    _assert_cursor_error(lists.get(path, {"cursor": _cursor(o="x")}))
    _assert_cursor_error(lists.get(path, {"cursor": _cursor(r="yes")}))
