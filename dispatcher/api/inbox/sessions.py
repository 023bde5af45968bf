"""Subscriber sessions of the browser inbox.

A page proves which subscriber it shows in one of two ways, both with the organisation's inbox
secret (:mod:`.secrets`), which only the application's server knows:

* ``subscriberHash``: hex HMAC-SHA256 of the subscriber id (Novu's HMAC mode), compared in
  constant time with the hash under each valid secret;
* or a JWT the application's server minted (HS256 with the secret, ``sub`` the subscriber id,
  ``exp`` required, at most :data:`MAX_APP_TOKEN_LIFETIME` ahead), sent as ``subscriberHash``.

The answer is a session token: a JWT signed with a key derived from the secret (so the
application's own JWTs are never session tokens), audience ``inbox``, carrying the organisation,
the subscriber and an expiry. It opens the inbox routes of that one subscriber and nothing else:
the organisation's routes take API keys alone, and the inbox routes refuse API keys.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from dispatcher.api.errors import UnauthorizedError
from dispatcher.api.inbox.secrets import InboxKeys, keys_for_organisation

ALGORITHM = "HS256"
AUDIENCE = "inbox"
ISSUER = "dispatcher"
#: Seconds a session token is valid; the page opens a new session after.
SESSION_LIFETIME = 3600
#: The longest an application's JWT may be valid for: it is a login handed to a browser.
MAX_APP_TOKEN_LIFETIME = 24 * 3600
_SESSION_KEY_LABEL = b"dispatcher inbox session token"


class InboxUnauthorizedError(UnauthorizedError):
    message = "inbox session missing, malformed, expired or not this subscriber's"


@dataclass(frozen=True)
class InboxCaller:
    """The subscriber a session token names."""

    organisation_id: uuid.UUID
    subscriber_external_id: str
    subscriber_id: uuid.UUID


def subscriber_hash(subscriber_id: str, secret: bytes) -> str:
    return hmac.new(secret, subscriber_id.encode(), hashlib.sha256).hexdigest()


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


def verified_subscriber(keys: InboxKeys, subscriber_id: str | None, proof: str | None) -> str:
    """The subscriber id the page proved (``proof``: a hash or an application JWT); else 401."""
    if not proof:
        raise InboxUnauthorizedError("subscriberHash: required")
    if _looks_like_jwt(proof):
        claims = _application_claims(keys, proof)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or (subscriber_id and sub != subscriber_id):
            raise InboxUnauthorizedError()
        return sub
    if not subscriber_id:
        raise InboxUnauthorizedError("subscriberId: required")
    given = proof.strip().lower().encode()
    matches = [
        hmac.compare_digest(subscriber_hash(subscriber_id, secret).encode(), given)
        for secret in keys.secrets
    ]
    if not any(matches):
        raise InboxUnauthorizedError()
    return subscriber_id


def _application_claims(keys: InboxKeys, token: str) -> dict[str, Any]:
    for secret in keys.secrets:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            raise InboxUnauthorizedError() from None
        if claims["exp"] - time.time() > MAX_APP_TOKEN_LIFETIME:
            raise InboxUnauthorizedError("subscriberHash: the token must expire within 24 h")
        return claims
    raise InboxUnauthorizedError()


def _session_key(secret: bytes) -> bytes:
    return hmac.new(secret, _SESSION_KEY_LABEL, hashlib.sha256).digest()


def issue(keys: InboxKeys, subscriber: InboxCaller, lifetime: int = SESSION_LIFETIME) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "org": str(subscriber.organisation_id),
        "sub": subscriber.subscriber_external_id,
        "sid": str(subscriber.subscriber_id),
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, _session_key(keys.secrets[0]), algorithm=ALGORITHM)


def verify(token: str | None) -> tuple[InboxCaller, InboxKeys]:
    """The subscriber of a session token and its organisation's inbox settings; 401 for
    anything else (an API key included)."""
    if not token or not _looks_like_jwt(token):
        raise InboxUnauthorizedError()
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        organisation_id = uuid.UUID(str(unverified["org"]))
    except (jwt.PyJWTError, KeyError, ValueError):
        raise InboxUnauthorizedError() from None
    keys = keys_for_organisation(organisation_id)
    if keys is None:
        raise InboxUnauthorizedError()
    for secret in keys.secrets:
        try:
            claims = jwt.decode(
                token,
                _session_key(secret),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "sid", "org"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            raise InboxUnauthorizedError() from None
        try:
            caller = InboxCaller(organisation_id, str(claims["sub"]), uuid.UUID(str(claims["sid"])))
        except ValueError:
            raise InboxUnauthorizedError() from None
        return caller, keys
    raise InboxUnauthorizedError()


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
