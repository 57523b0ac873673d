"""GET|PUT /api/v1/recipients/{id}/preferences/ on real PostgreSQL."""
import pytest
from rest_framework import status

from apps.recipients.models import Preference

pytestmark = pytest.mark.django_db

URL = "/api/v1/recipients/alice/preferences/"


@pytest.fixture
def alice(api):
    api.put("/api/v1/recipients/alice/", {"email": "alice@example.com", "timezone": "America/New_York"},
            format="json")


def test_a_new_recipient_has_every_channel_on_no_overrides_and_no_quiet_hours(api, alice):
    response = api.get(URL)
    assert response.status_code == status.HTTP_200_OK
    assert response.json() == {
        "channels": {"email": True, "sms": True, "push": True, "in_app": True},
        "categories": {},
        "quiet_hours": None,
        "topics": {},
    }


def test_put_stores_the_whole_document(api, alice):
    document = {"channels": {"email": True, "sms": False}, "categories": {"marketing": {"email": False}},
                "quiet_hours": {"start": "22:00", "end": "07:00"}}
    response = api.put(URL, document, format="json")
    assert response.status_code == status.HTTP_200_OK, response.content
    expected = {"channels": {"email": True, "sms": False, "push": True, "in_app": True},
                "categories": {"marketing": {"email": False}}, "quiet_hours": {"start": "22:00", "end": "07:00"},
                "topics": {}}
    assert response.json() == expected
    assert api.get(URL).json() == expected


def test_put_merges_a_partial_document(api, alice):
    api.put(URL, {"channels": {"sms": False}, "categories": {"marketing": {"email": False}},
                  "quiet_hours": {"start": "22:00", "end": "07:00"}}, format="json")

    api.put(URL, {"channels": {"push": False}}, format="json")
    api.put(URL, {"categories": {"marketing": {"sms": False}, "transactional": {"push": True}}}, format="json")

    assert api.get(URL).json() == {
        "channels": {"email": True, "sms": False, "push": False, "in_app": True},
        "categories": {"marketing": {"email": False, "sms": False}, "transactional": {"push": True}},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "topics": {},
    }


def test_null_removes_a_setting_and_clears_quiet_hours(api, alice):
    api.put(URL, {"channels": {"sms": False}, "categories": {"marketing": {"email": False, "sms": False}},
                  "quiet_hours": {"start": "22:00", "end": "07:00"}}, format="json")

    api.put(URL, {"channels": {"sms": None}, "categories": {"marketing": {"email": None}}, "quiet_hours": None},
            format="json")
    document = api.get(URL).json()
    assert document["channels"]["sms"] is True
    assert document["categories"] == {"marketing": {"sms": False}}
    assert document["quiet_hours"] is None

    api.put(URL, {"categories": {"marketing": None}}, format="json")
    assert api.get(URL).json()["categories"] == {}
    assert Preference.objects.count() == 0


def test_setting_the_same_preference_twice_keeps_one_row(api, alice):
    for value in (False, True, False):
        api.put(URL, {"categories": {"marketing": {"email": value}}}, format="json")
    assert Preference.objects.count() == 1
    assert Preference.objects.get().enabled is False


@pytest.mark.parametrize("document,field", [
    ({"channels": {"fax": False}}, "channels"),
    ({"channels": {"email": "no"}}, "channels"),
    ({"channels": ["email"]}, "channels"),
    ({"categories": {"newsletters": {"email": False}}}, "categories"),
    ({"categories": {"marketing": {"pigeon": False}}}, "categories"),
    ({"categories": {"marketing": False}}, "categories"),
    ({"categories": {"marketing": {"email": 0}}}, "categories"),
    ({"quiet_hours": {"start": "22:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "10pm", "end": "07:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours"),
    ({"quiet_hours": "22:00-07:00"}, "quiet_hours"),
    ({"timezone": "UTC"}, "timezone"),
])
def test_invalid_preferences_are_400_and_change_nothing(api, alice, document, field):
    response = api.put(URL, {"channels": {"sms": False}, **document}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content
    assert field in response.json()["errors"]
    assert api.get(URL).json()["channels"]["sms"] is True


def test_preferences_of_an_unknown_recipient_are_404(api):
    assert api.get("/api/v1/recipients/nobody/preferences/").status_code == status.HTTP_404_NOT_FOUND
    response = api.put("/api/v1/recipients/nobody/preferences/", {"channels": {"sms": False}}, format="json")
    assert response.status_code == status.HTTP_404_NOT_FOUND
