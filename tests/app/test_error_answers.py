"""Requests Django refuses before any view still get the API's JSON error shape, never an HTML page."""
import json

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


def test_djangos_500_handler_answers_503_while_a_dependency_is_down_and_500_otherwise(rf):
    """handler500 runs while Django handles an error raised outside any view (a middleware's): a database
    outage there is a 503 with Retry-After too, anything else stays a 500."""
    from django.db import OperationalError

    from apps.api.errors import json_server_error

    request = rf.get("/api/v1/notifications/")
    try:
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
    except OperationalError:
        outage = json_server_error(request)
    try:
        raise ValueError("a bug")
    except ValueError:
        bug = json_server_error(request)
    assert (outage.status_code, outage["Retry-After"]) == (503, "5")
    assert "unavailable" in json.loads(outage.content)["detail"]
    assert bug.status_code == 500 and not bug.has_header("Retry-After")


@pytest.mark.parametrize("message", ["server closed the connection unexpectedly\n\tThis probably means...", " \n", ""])
def test_a_views_outage_answers_503_whatever_its_message(rf, message):
    from django.db import InterfaceError

    from apps.api.errors import ServiceUnavailableMiddleware

    middleware = ServiceUnavailableMiddleware(lambda request: None)
    request = rf.post("/api/v1/notifications/batch/")
    assert middleware.process_exception(request, InterfaceError(message)).status_code == 503
    assert middleware.process_exception(request, KeyError(message)) is None  # a bug: Django's 500
