"""Requests Django refuses before any view still get the API's JSON error shape, never an HTML page."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["ZB{.~j", "bad host", "x/y"])
def test_a_host_header_that_is_no_host_name_gets_a_json_400(client, host):
    response = client.get("/api/v1/broadcasts/x/", HTTP_HOST=host)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errors": {"detail": ["Bad request."]}, "detail": "Bad request."}
    assert host not in response.content.decode()


def test_an_unknown_path_gets_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert "errors" in response.json()
