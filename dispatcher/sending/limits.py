"""Fitting a message to the limits its provider declares, before any request is made.

What a provider class declares (:mod:`providers.base`) decides, per integration:

* ``max_body_length``: a longer body is refused when the provider's ``long_body`` is ``REFUSE``
  (the API would reject it), cut to the limit with an ellipsis when it is ``TRUNCATE`` (the API
  would cut it anyway, without saying where), and sent as it is when it is ``SPLIT`` (the API
  splits it into several messages itself);
* ``max_attachments``: a message with more attachments is refused;
* ``supports_html``: when false, the HTML part is dropped and the text part alone is sent.

A refusal is not an attempt: the next integration of the channel whose limits fit is tried, and
the delivery fails with the refusal's reason only when none fits.
"""

from __future__ import annotations

from dispatcher.sending.integrations import Candidate
from providers.base import LongBody, Message
from providers.registry import AnyProvider, default_registry

ELLIPSIS = "…"


class LimitExceededError(Exception):
    """The message exceeds a limit of the integration's provider; the text says which."""


def fit(provider: type[AnyProvider], message: Message) -> Message:
    """``message`` as ``provider`` may be sent it, or :class:`LimitExceededError`."""
    changes: dict[str, object] = {}
    limit = provider.max_body_length
    if limit is not None and len(message.body) > limit:
        if provider.long_body is LongBody.REFUSE:
            raise LimitExceededError(f"body of {len(message.body)} characters exceeds {limit}")
        if provider.long_body is LongBody.TRUNCATE:
            changes["body"] = message.body[: limit - len(ELLIPSIS)] + ELLIPSIS
    if len(message.attachments) > provider.max_attachments:
        raise LimitExceededError(
            f"{len(message.attachments)} attachments exceed {provider.max_attachments}"
        )
    if message.html is not None and not provider.supports_html:
        changes["html"] = None
    return message.model_copy(update=changes) if changes else message


def fitting(
    candidates: list[Candidate], message: Message
) -> tuple[list[tuple[Candidate, Message]], str | None]:
    """The candidates ``message`` fits, in order, each with the message fitted to it, and the
    reason the last one passed over was refused (``None`` when every one fits)."""
    fitted: list[tuple[Candidate, Message]] = []
    refusal: str | None = None
    for candidate in candidates:
        try:
            fitted.append((candidate, _fit_for(candidate.provider, message)))
        except LimitExceededError as exc:
            refusal = f"{candidate.provider}: {exc}"
    return fitted, refusal


def _fit_for(provider_name: str, message: Message) -> Message:
    """:func:`fit` for a provider named by an integration; a name that does not load (unknown,
    a broken third-party module) is left to the send, which reports it as the integration's
    error."""
    try:
        provider = default_registry.get(provider_name)
    except Exception:
        return message
    return fit(provider, message)
