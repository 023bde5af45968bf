"""AWS Signature Version 4 request signing, written out with :mod:`hashlib` and :mod:`hmac`.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html

Four steps: a *canonical request* (method, normalised and URI-encoded path, sorted query, sorted
lower-cased headers with trimmed values, the signed header names, the payload's SHA-256), a
*string to sign* (algorithm, timestamp, credential scope ``date/region/service/aws4_request``,
SHA-256 of the canonical request), a *signing key* derived by chained HMACs from
``"AWS4" + secret``, and the hex HMAC of the string to sign under that key, sent in the
``Authorization`` header. Paths follow the rules for every service except S3: dot segments and
empty segments are removed, then each segment is URI-encoded (the path as sent is encoded once
more). Checked against AWS's published SigV4 test suite in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import httpx

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    #: Temporary credentials (STS) add a session token, sent as ``X-Amz-Security-Token``.
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Signature:
    """Every intermediate value, so tests can compare each against the published ones."""

    #: Carries every signed header, the session token among them.
    canonical_request: str = field(repr=False)
    string_to_sign: str
    signature: str = field(repr=False)
    #: Headers to add to the request, ``Authorization`` last.
    headers: tuple[tuple[str, str], ...] = field(repr=False)

    @property
    def authorization(self) -> str:
        return dict(self.headers)["Authorization"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """``kSigning``: HMAC chain over the date (``YYYYMMDD``), region, service and terminator."""
    key = _hmac(f"AWS4{secret_access_key}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _encode(text: str) -> str:
    """URI-encode everything but the unreserved characters ``A-Z a-z 0-9 - _ . ~``."""
    return quote(text, safe="")


def canonical_uri(path: str) -> str:
    """The normalised, encoded path (non-S3 rules): ``//a/./b/../c/`` becomes ``/a/c/``."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    uri = "/" + "/".join(_encode(segment) for segment in segments)
    if segments and path.endswith("/"):
        uri += "/"
    return uri


def canonical_query(query: str) -> str:
    """Parameters decoded, re-encoded strictly and sorted by name, then value."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """``(canonical header block, signed header names)``.

    Names are lower-cased and sorted; values are trimmed with inner whitespace runs (and folded
    lines) collapsed to one space; repeated headers join their values with commas in order.
    """
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.strip().lower(), []).append(" ".join(value.split()))
    names = sorted(merged)
    block = "".join(f"{name}:{','.join(merged[name])}\n" for name in names)
    return block, ";".join(names)


def sign(
    method: str,
    path: str,
    query: str,
    headers: Sequence[tuple[str, str]],
    payload: bytes,
    *,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime,
    content_sha256_header: bool = False,
) -> Signature:
    """Sign one request. ``headers`` must include ``Host``; all of them are signed.

    ``path`` and ``query`` are the request target as sent (``query`` without the ``?``).
    ``content_sha256_header`` adds (and signs) ``X-Amz-Content-Sha256``, which S3 requires.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    payload_hash = sha256_hex(payload)
    added: list[tuple[str, str]] = [("X-Amz-Date", amz_date)]
    if credentials.session_token:
        added.append(("X-Amz-Security-Token", credentials.session_token))
    if content_sha256_header:
        added.append(("X-Amz-Content-Sha256", payload_hash))
    header_block, signed_headers = canonical_headers([*headers, *added])
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            header_block,
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, sha256_hex(canonical_request.encode("utf-8"))]
    )
    key = signing_key(credentials.secret_access_key, date, region, service)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signature(
        canonical_request=canonical_request,
        string_to_sign=string_to_sign,
        signature=signature,
        headers=(*added, ("Authorization", authorization)),
    )


def signed_headers_for(
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    payload: bytes,
    *,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """``headers`` plus ``Host`` and the signature headers, for an ``httpx`` request to ``url``.

    Send exactly ``payload`` as the body (``content=``), never a re-serialised copy.
    """
    path = url.raw_path.decode("ascii").partition("?")[0]
    query = url.query.decode("ascii")
    all_headers = {"Host": url.netloc.decode("ascii"), **headers}
    signature = sign(
        method,
        path,
        query,
        list(all_headers.items()),
        payload,
        credentials=credentials,
        region=region,
        service=service,
        now=now,
    )
    return {**all_headers, **dict(signature.headers)}
