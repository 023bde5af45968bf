"""Encryption at rest for credential columns: a key ring of Fernet keys (MultiFernet).

The first key encrypts; every key decrypts, so keys rotate without downtime: add a new key in
front, re-encrypt (``rotate``), then drop the old key. The ring is configured once per process by
the application before any credential is read or written; using it unconfigured is an error.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class KeyRingError(RuntimeError):
    """The key ring is missing, malformed, or cannot decrypt a value."""


class KeyRing:
    def __init__(self) -> None:
        self._fernet: MultiFernet | None = None
        self._key_count = 0

    def configure(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise KeyRingError("no encryption key given: at least one Fernet key is required")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise KeyRingError(
                    f"encryption key #{position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes, as `dispatcher keys generate` prints)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self._key_count = len(fernets)

    @property
    def is_configured(self) -> bool:
        return self._fernet is not None

    @property
    def key_count(self) -> int:
        return self._key_count

    def _ring(self) -> MultiFernet:
        if self._fernet is None:
            raise KeyRingError(
                "encryption keys are not configured: the application must configure the key "
                "ring before reading or writing credentials"
            )
        return self._fernet

    def encrypt(self, plaintext: bytes) -> str:
        return self._ring().encrypt(plaintext).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        try:
            return self._ring().decrypt(token.encode("ascii"))
        except InvalidToken:
            raise KeyRingError(
                "a stored credential cannot be decrypted with any configured key "
                "(was a key removed before rotation finished?)"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token with the first key."""
        try:
            return self._ring().rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise KeyRingError(
                "a stored credential cannot be decrypted with any configured key"
            ) from None


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


#: The ring used by every encrypted column of this package's models.
credential_keys = KeyRing()
