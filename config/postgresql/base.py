"""Django's PostgreSQL backend, with query recording decoupled from ``DEBUG``.

Django records every query of every connection while ``DEBUG`` is on (the SQL text of each statement
is rebuilt with its parameters and kept in ``connection.queries``, up to 9,000 per connection). On
notifier's bulk paths a statement carries a whole chunk (a COPY, an ``unnest`` of 1,000 results), so
with the ``DEBUG=1`` that ``make`` writes into ``.env`` for local use the API and the workers spent a
large part of their CPU, and memory, on a record nobody reads. Here it is kept only where asked for:
``DEBUG_SQL=1`` (settings.DEBUG_SQL), or ``force_debug_cursor`` (tests' ``CaptureQueriesContext``,
``assertNumQueries``).
"""
from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def queries_logged(self) -> bool:
        return self.force_debug_cursor or (settings.DEBUG and settings.DEBUG_SQL)
