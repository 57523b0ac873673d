import pytest

from tests.stack import Stack


@pytest.fixture
def stack(tmp_path, transactional_db, purge_queues, smtp_sink):
    """Worker/beat processes that deliver email to this test's SMTP sink."""
    s = Stack(tmp_path / "stack", env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_sink.port)})
    yield s
    s.stop_all()
