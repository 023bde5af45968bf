"""After ``sent``: provider callbacks verified and applied, and suppressed addresses.

* :mod:`~dispatcher.lifecycle.receive`: at the HTTP boundary, a callback for one integration
  verified by its provider's own parser (:meth:`providers.base.Provider.parse_callback`) with the
  integration's decrypted credentials, into plain-JSON events for the broker;
* :mod:`~dispatcher.lifecycle.apply`: in the worker, those events applied in bulk: each delivery's
  reported status, the event log (de-duplicated by event id), suppressions;
* :mod:`~dispatcher.lifecycle.suppressions`: listing and lifting suppressions (API, CLI).
* :mod:`~dispatcher.lifecycle.routing`: sends of a step whose success is ``delivered``
  confirmed, or failed over to the next integration (undelivered, soft bounce, no report in
  time; the timeout found by the outbox sweep).

The sending path reads suppressions itself (``dispatcher.sending.plan``), one query per batch.
"""
