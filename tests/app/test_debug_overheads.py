"""DEBUG=1 (what `make` writes into .env for local use) must not make the service record every query."""
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings


@override_settings(DEBUG=True, DEBUG_SQL=False)
def test_with_debug_on_queries_are_not_recorded_unless_debug_sql_is_set(db):
    connection.queries_log.clear()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert len(connection.queries_log) == 0


@override_settings(DEBUG=True, DEBUG_SQL=True)
def test_debug_sql_records_queries_as_django_does_with_debug(db):
    connection.queries_log.clear()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert [q["sql"] for q in connection.queries] == ["SELECT 1"]


@override_settings(DEBUG=False, DEBUG_SQL=True)
def test_debug_sql_alone_records_nothing_outside_debug(db):
    connection.queries_log.clear()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert len(connection.queries_log) == 0


def test_capturing_queries_still_works_with_debug_sql_off(db):
    with CaptureQueriesContext(connection) as captured, connection.cursor() as cursor:
        cursor.execute("SELECT 2")
    assert [q["sql"] for q in captured.captured_queries] == ["SELECT 2"]
