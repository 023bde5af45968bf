"""Masking secrets in text, data and log records.

A :class:`Redactor` knows two things: secret *values* the process has handled (credentials
decrypted for a send, registered with :meth:`Redactor.add` or :meth:`Redactor.add_from`),
which are replaced wherever they appear, as they are and as URLs and JSON spell them; and secret
*field names* (``api_key``, ``password``, any name containing ``secret``, ``token``,
``password`` or ``key``, ...), whose values are masked in data and in ``name=value`` or
``"name": "value"`` text. Bearer and Basic credentials in text are masked too.

A long-lived worker decrypts every tenant's credentials in turn, so the values it remembers are
bounded: values registered inside :meth:`Redactor.scope` (a batch, a probe run) belong to that
scope, a context variable, so they are seen by the scope's own tasks and threads of control and
dropped when it ends; the last :data:`RECENT_SECRETS` values (from ended scopes, or registered
outside any) are kept a while longer, so a late log line about them is still masked. Masking a
record looks each known spelling up with ``in`` and replaces those present, longest first: no
pattern is compiled per secret, and the cost per record is bounded by what is retained.

:func:`install_log_redaction` puts a :class:`RedactingFilter` on the root logger's handlers.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

MASK = "***"
#: Shorter values are not registered: masking them would garble ordinary text.
MIN_SECRET_LENGTH = 6
#: Values kept after their scope ended (or registered outside any), most recent first.
RECENT_SECRETS = 64

_SECRET_NAME_PARTS = (
    "secret",
    "token",
    "password",
    "passwd",
    "passphrase",
    "key",
    "credential",
    "authorization",
    "cookie",
    "signature",
)
_SECRET_NAMES = frozenset({"webhookurl", "dsn", "auth"})
_NOT_SECRET_NAMES = frozenset({"keyid", "idempotencykey", "publickey", "tokentype"})

_ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][\w.-]*)(?P<sep>=)(?P<value>[^\s&;,'\"]+)")
_QUOTED_PAIR = re.compile(
    r"(?P<q>[\"'])(?P<name>[\w.-]+)(?P=q)(?P<sep>\s*:\s*)"
    r"(?P<vq>[\"'])(?P<value>(?:\\.|(?!(?P=vq)).)*)(?P=vq)"
)
# A credential after "Bearer"/"Basic": 12+ token characters with a digit or symbol among them,
# so that prose such as "Basic authentication" stays readable.
_AUTH_SCHEME = re.compile(
    r"\b(?P<scheme>Bearer|Basic)\s+(?=[A-Za-z.]*[0-9_~+/=-])[A-Za-z0-9._~+/=-]{12,}",
    re.IGNORECASE,
)


def is_secret_field(name: str) -> bool:
    """Whether a field of this name holds a secret (``apiKey``, ``X-Auth-Token``, ...)."""
    normal = re.sub(r"[^a-z0-9]", "", name.lower())
    if normal in _NOT_SECRET_NAMES:
        return False
    return normal in _SECRET_NAMES or any(part in normal for part in _SECRET_NAME_PARTS)


def _spellings(value: str) -> tuple[str, ...]:
    # The same secret as it appears in URLs and JSON documents.
    forms = (value, quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1])
    return tuple(dict.fromkeys(forms))


def _registrable(values: Iterable[str | SecretStr]) -> dict[str, tuple[str, ...]]:
    plain = (v.get_secret_value() if isinstance(v, SecretStr) else v for v in values)
    return {value: _spellings(value) for value in plain if len(value) >= MIN_SECRET_LENGTH}


class _Scope:
    """The values registered while one scope is current; the spellings of each."""

    def __init__(self, owner: Redactor, parent: _Scope | None) -> None:
        self.owner = owner
        self.parent = parent
        self.values: dict[str, tuple[str, ...]] = {}
        self.spellings: frozenset[str] = frozenset()

    def add(self, values: dict[str, tuple[str, ...]]) -> None:
        self.values.update(values)
        self.spellings = frozenset(s for spellings in self.values.values() for s in spellings)


_CURRENT_SCOPE: ContextVar[_Scope | None] = ContextVar("redaction_scope", default=None)


class Redactor:
    """Known secret values and the rules for secret field names; safe to share across threads."""

    def __init__(self, values: Iterable[str | SecretStr] = ()) -> None:
        self._lock = threading.Lock()
        # Values given here are kept for the redactor's life; later ones are bounded (above).
        self._pinned: frozenset[str] = frozenset(
            s for spellings in _registrable(values).values() for s in spellings
        )
        self._recent: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._kept: frozenset[str] = self._pinned

    def add(self, *values: str | SecretStr) -> None:
        """Remember secret values, in the current scope if there is one; those shorter than
        :data:`MIN_SECRET_LENGTH` are ignored."""
        fresh = _registrable(values)
        if not fresh:
            return
        scope = self._scope()
        if scope is not None:
            scope.add(fresh)
        else:
            self._keep(fresh)

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Values added inside are masked inside (in this context and the tasks it starts),
        then join the few recent values kept after it."""
        scope = _Scope(self, self._scope())
        token = _CURRENT_SCOPE.set(scope)
        try:
            yield
        finally:
            _CURRENT_SCOPE.reset(token)
            self._keep(scope.values)

    def retained(self) -> int:
        """How many spellings of secret values this redactor holds outside any scope."""
        return len(self._kept)

    def _scope(self) -> _Scope | None:
        scope = _CURRENT_SCOPE.get()
        while scope is not None and scope.owner is not self:
            scope = scope.parent
        return scope

    def _keep(self, values: dict[str, tuple[str, ...]]) -> None:
        with self._lock:
            for value, spellings in values.items():
                self._recent[value] = spellings
                self._recent.move_to_end(value)
            while len(self._recent) > RECENT_SECRETS:
                self._recent.popitem(last=False)
            self._kept = self._pinned.union(*self._recent.values())

    def _known(self) -> Iterator[str]:
        yield from self._kept
        scope = self._scope()
        while scope is not None:
            if scope.owner is self:
                yield from scope.spellings
            scope = scope.parent

    def add_from(self, data: Any) -> None:
        """Remember every string in ``data`` (e.g. a decrypted credentials object)."""
        self.add(*_strings(data))

    def clear(self) -> None:
        """Forget every value held outside a scope (scopes keep theirs until they end)."""
        with self._lock:
            self._pinned = frozenset()
            self._recent.clear()
            self._kept = frozenset()

    def redact_text(self, text: str) -> str:
        """``text`` with known values, secret ``name=value`` pairs and bearer tokens masked."""
        # Longest first, so a secret containing another is masked whole.
        for spelling in sorted({s for s in self._known() if s in text}, key=len, reverse=True):
            text = text.replace(spelling, MASK)
        text = _ASSIGNMENT.sub(_mask_named_value, text)
        text = _QUOTED_PAIR.sub(_mask_named_value, text)
        return _AUTH_SCHEME.sub(lambda match: f"{match['scheme']} {MASK}", text)

    def redact_data(self, data: Any) -> Any:
        """A copy of JSON-like ``data`` with secret-named fields and known values masked."""
        return self._redact(data, frozenset())

    def _redact(self, data: Any, inside: frozenset[int]) -> Any:
        if isinstance(data, str):
            return self.redact_text(data)
        if not isinstance(data, Mapping | list | tuple | set | frozenset):
            return data
        if id(data) in inside:
            return MASK  # a container that holds itself
        inside = inside | {id(data)}
        if isinstance(data, Mapping):
            return {
                key: MASK
                if isinstance(key, str) and is_secret_field(key) and value is not None
                else self._redact(value, inside)
                for key, value in data.items()
            }
        items = [self._redact(item, inside) for item in data]
        return _same_kind(data, items)

    def __repr__(self) -> str:
        return f"Redactor({len(self._kept)} known spellings)"


def _same_kind(original: Iterable[Any], items: list[Any]) -> Any:
    if isinstance(original, list):
        return items
    if isinstance(original, tuple):
        return tuple(items)
    if isinstance(original, frozenset):
        return frozenset(items)
    return set(items)


def _mask_named_value(match: re.Match[str]) -> str:
    if not is_secret_field(match["name"]):
        return match[0]
    value_start = match.start("value") - match.start()
    value_end = match.end("value") - match.start()
    return match[0][:value_start] + MASK + match[0][value_end:]


def _strings(data: Any) -> Iterable[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, SecretStr):
        yield data.get_secret_value()
    elif isinstance(data, Mapping):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list | tuple | set | frozenset):
        for item in data:
            yield from _strings(item)


#: The redactor of this process: workers register credentials here when they decrypt them.
default_redactor = Redactor()


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, traceback and stack text.

    The message is formatted with its arguments, then redacted, and the arguments dropped:
    an argument's ``str()`` may hold a secret that redacting the argument alone would miss.
    Likewise the traceback is rendered into ``exc_text``, redacted, and ``exc_info`` dropped,
    so a handler that renders only ``exc_info`` shows no traceback rather than a secret.
    """

    def __init__(self, redactor: Redactor | None = None, name: str = "") -> None:
        super().__init__(name)
        self.redactor = default_redactor if redactor is None else redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor.redact_text
        try:
            message = record.getMessage()
        except Exception:
            # A filter that raises breaks the caller's logging call; leave the formatting
            # error for the handler to report, redacted meanwhile.
            record.msg = redact(str(record.msg))
            record.args = self.redactor.redact_data(record.args)
        else:
            record.msg = redact(message)
            record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        # Formatters that prefer exc_info would print the exception unredacted; without it,
        # they fall back to exc_text.
        record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(
    logger: logging.Logger | None = None, redactor: Redactor | None = None
) -> RedactingFilter:
    """Add a :class:`RedactingFilter` to each handler of ``logger`` (the root logger by default).

    Filters go on handlers because a logger's own filters skip records propagated from its
    children. Handlers added later are not covered: call this once logging is configured.
    Calling it again adds nothing to a handler that already redacts.
    """
    target = logging.getLogger() if logger is None else logger
    redacting = RedactingFilter(redactor)
    for handler in target.handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(redacting)
    return redacting
