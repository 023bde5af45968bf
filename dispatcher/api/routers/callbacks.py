"""``POST /v1/webhooks/providers/{integrationId}``: providers' delivery callbacks (ours).

No API key: the provider signs its callback, and the integration's provider module verifies the
signature with the integration's credentials (:mod:`dispatcher.lifecycle.receive`). Point the
provider's webhook at this URL with the integration's id. Answers:

* 200 ``{"data": {"received": n}}``: authentic; its ``n`` events are queued for the worker
  (``DISPATCHER_LIFECYCLE_QUEUE``, with the events of concurrent callbacks: see
  :mod:`dispatcher.lifecycle.publishing`), which applies them within moments;
* 401: not authentic, or no such integration (the same answer, so ids cannot be probed);
  nothing changes;
* 400: authentic but unreadable; nothing changes;
* 503 with ``Retry-After``: the broker is unreachable or the integration's credentials cannot
  be decrypted by this process: the provider's retry brings the events again.

Behind a proxy, set ``DISPATCHER_PUBLIC_URL``: providers that sign the URL (Twilio, Plivo) sign
the one they called, which the request's own URL is not.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from kombu.exceptions import OperationalError as BrokerError

from dispatcher.api.errors import (
    BadRequestError,
    ErrorBody,
    ServiceUnavailableError,
    UnauthorizedError,
)
from dispatcher.api.schemas import Envelope, WireModel, envelope
from dispatcher.config import Settings, get_settings
from dispatcher.lifecycle.publishing import CallbackPublisher
from dispatcher.lifecycle.receive import CallbackReceiver, Refused, Unavailable, as_message
from dispatcher.notifications.enqueue import publish_delivery_events
from providers.callbacks import CallbackRequest

router = APIRouter(prefix="/v1/webhooks/providers", tags=["Provider callbacks"])

RETRY_AFTER = {"Retry-After": "30"}
REFUSED = "callback refused: unknown integration or signature not valid"


class Received(WireModel):
    received: int


@cache
def receiver() -> CallbackReceiver:
    return CallbackReceiver(get_settings())


@cache
def publisher() -> CallbackPublisher:
    return CallbackPublisher(lambda callbacks: publish_delivery_events(callbacks, get_settings()))


def public_url(request: Request, settings: Settings) -> str:
    """The URL the provider called: under ``DISPATCHER_PUBLIC_URL`` when set."""
    if not settings.public_url:
        return str(request.url)
    query = request.url.query
    return f"{settings.public_url.rstrip('/')}{request.url.path}{'?' + query if query else ''}"


@router.post(
    "/{integrationId}",
    response_model=Envelope[Received],
    responses={
        400: {"model": ErrorBody, "description": "Authentic but unreadable; nothing applied"},
        401: {"model": ErrorBody, "description": "Not authentic, or no such integration"},
        413: {"model": ErrorBody, "description": "Request body too large"},
        503: {"model": ErrorBody, "description": "Cannot be taken now (`Retry-After`)"},
    },
)
async def provider_callback(
    integration_id: Annotated[str, Path(alias="integrationId", max_length=100)],
    request: Request,
) -> dict[str, Any]:
    """A provider's delivery callback for one integration, verified by its signature."""
    callback = CallbackRequest(
        method=request.method,
        url=public_url(request, get_settings()),
        headers=dict(request.headers),
        body=await request.body(),
    )
    return await take_callback(integration_id, callback)


async def take_callback(integration_id: str, callback: CallbackRequest) -> dict[str, Any]:
    """Verify, parse and queue ``callback``; the answer's body, or an :class:`ApiError`."""
    try:
        # A burst for one integration finds it cached: no thread hop for the lookup.
        target = receiver().targets.cached(integration_id)
        if target is None:
            target = await run_in_threadpool(receiver().targets.get, integration_id)
        parsed = await receiver().parse(target, callback)
        if parsed.confirm_subscription_url:
            await receiver().confirm_subscription(target, parsed.confirm_subscription_url)
    except Refused as exc:
        if exc.unreadable:
            raise BadRequestError(f"callback unreadable: {exc.reason}") from None
        raise UnauthorizedError(REFUSED) from None
    except Unavailable:
        raise ServiceUnavailableError(headers=RETRY_AFTER) from None
    if parsed.events:
        try:
            await asyncio.wrap_future(publisher().submit(as_message(target, parsed)))
        except BrokerError:
            raise ServiceUnavailableError(headers=RETRY_AFTER) from None
    return envelope(Received(received=len(parsed.events)))
