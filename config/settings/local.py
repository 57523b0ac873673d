"""Settings for development (DEBUG on): ``make run``, manage.py with the generated ``.env``, the tests."""
from .base import *  # noqa: F401,F403
from .base import SECRET_KEY

if not SECRET_KEY:
    SECRET_KEY = "insecure-local-development-key-only-used-when-DEBUG-is-on"
