"""Optional encryption at rest for personal data (Recipient.email and .phone).

With ``NOTIFIER_FIELD_ENCRYPTION_KEY`` set (a Fernet key from
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``;
several comma-separated keys rotate: the first encrypts, all decrypt), values are
written as ``enc1:<Fernet token>`` (AES-128-CBC + HMAC-SHA256, random IV) and
decrypted when loaded. Unset, values are stored in plain text. Rows written in
either mode stay readable in the other as long as the key is there to decrypt.

Encrypted columns cannot be searched or filtered by value (the ciphertext is
different every time, so such lookups simply match nothing, except the empty
string, which is stored as is): look recipients up by ``external_id``.
"""
from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "enc1:"


@lru_cache(maxsize=4)
def _fernet_for(keys: str) -> MultiFernet | None:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        return None
    try:
        return MultiFernet([Fernet(k.encode()) for k in parts])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "NOTIFIER_FIELD_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated"
        ) from exc


def field_cipher() -> MultiFernet | None:
    return _fernet_for(settings.NOTIFIER_FIELD_ENCRYPTION_KEY)


def encrypt_value(value: str) -> str:
    cipher = field_cipher()
    if cipher is None or not value or value.startswith(PREFIX):
        return value
    return PREFIX + cipher.encrypt(value.encode("utf-8")).decode("ascii")


def decrypt_value(value: str) -> str:
    if not value or not value.startswith(PREFIX):
        return value
    cipher = field_cipher()
    if cipher is None:
        raise ImproperlyConfigured("An encrypted field was read but NOTIFIER_FIELD_ENCRYPTION_KEY is not set")
    try:
        return cipher.decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "An encrypted field could not be decrypted with NOTIFIER_FIELD_ENCRYPTION_KEY (wrong or rotated-out key)"
        ) from exc


class EncryptedCharField(models.CharField):
    """A CharField (``max_length`` checks the plain value) stored in a text column, encrypted when a key is set."""

    def db_type(self, connection):
        return "text"

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt_value(value) if isinstance(value, str) else value

    def from_db_value(self, value, expression, connection):
        return decrypt_value(value) if isinstance(value, str) else value


@checks.register(checks.Tags.security)
def check_encryption_key(app_configs=None, **kwargs):
    try:
        field_cipher()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="notifier.E001")]
    return []
