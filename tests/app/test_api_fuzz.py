"""Hypothesis over the OpenAPI schema (/api/schema/, via schemathesis strategies): no generated
request, valid or invalid, gets a 5xx, and every error answer has the ``{"errors": ...}`` shape.

Runs in-process against the WSGI app and the test database, derandomized and bounded
(MAX_EXAMPLES per generation mode), so it is repeatable and takes seconds.
"""
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

MAX_EXAMPLES = 150


@pytest.fixture
def api_schema(db):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from config.wsgi import application

    # As Django's test client does: keep the test's connection (and transaction) open across requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(api_schema, api_key, mode):
    operations = [op.ok() for op in api_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /api/v1/notifications/{key}/", "GET /api/v1/notifications/{key}/", "GET /api/v1/notifications/"}
    seen = set()

    @given(case=api_schema.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        headers = {"Authorization": f"Bearer {api_key.raw}"}
        response = case.call(headers=headers)
        seen.add((case.method, response.status_code))
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}\n"
            f"query: {case.query!r} headers: {case.headers!r}\nbody: {case.body!r}\nanswer: {response.text[:500]}"
        )
        if response.status_code >= 400:
            assert "errors" in response.json(), response.text[:300]

    check()
    # Both reading and creating were exercised (not only requests refused before reaching a view).
    assert {"GET", "POST"} <= {method for method, code in seen if code not in (401, 403, 405)}, seen
