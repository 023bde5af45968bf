"""After ``sent``: provider callbacks verified and applied, suppressed addresses, and the
organisation's outbound webhook endpoints.

* :mod:`~dispatcher.lifecycle.receive`: at the HTTP boundary, a callback for one integration
  verified by its provider's own parser (:meth:`providers.base.Provider.parse_callback`) with the
  integration's decrypted credentials, into plain-JSON events for the broker;
* :mod:`~dispatcher.lifecycle.apply`: in the worker, those events applied in bulk: each delivery's
  reported status, the event log (de-duplicated by event id), suppressions;
* :mod:`~dispatcher.lifecycle.suppressions`: listing and lifting suppressions (API, CLI).
* :mod:`~dispatcher.lifecycle.routing`: sends of a step whose success is ``delivered``
  confirmed, or failed over to the next integration (undelivered, soft bounce, no report in
  time; the timeout found by the outbox sweep).
* :mod:`~dispatcher.lifecycle.webhooks`: the organisation's outbound webhook endpoints (API,
  CLI); the events are written by :mod:`dispatcher.sending.webhook_events` with the status
  change and posted by :mod:`dispatcher.sending.webhook_posting`, both below this layer since
  the batch's write-back writes them too.

The sending path reads suppressions itself (``dispatcher.sending.plan``), one query per batch.
"""
