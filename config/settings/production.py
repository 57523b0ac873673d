"""Settings for production (DEBUG off): a SECRET_KEY is required; the hardening defaults of ``base``
(secure cookies, HSTS) follow from DEBUG being off."""
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import DEBUG, SECRET_KEY

if DEBUG:
    raise ImproperlyConfigured("config.settings.production runs with DEBUG off; config.settings picks local for DEBUG=1")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
