"""Sending one batch of deliveries.

``batch`` orchestrates: ``store`` claims the rows, ``plan`` loads and renders them into jobs with
their candidate integrations (no HTTP; ``digests`` closes a digest as it reads its events),
``execute`` sends the jobs concurrently through the providers (no database) after
``integrations.prepare`` readied each integration, and ``lease`` keeps the claim renewed and
writes outcomes back through ``store`` as they come. ``limits``, ``rate_limit``, ``circuit``,
``backoff``, ``rendering``, ``conditions`` and ``routing`` (a step's ``success`` and
``wait_for`` options) are the policies they use (``circuit`` keeps both
the failure-opened circuits and the providers' ``Retry-After`` holds), and ``probe`` is the beat
job that closes circuits; the URL guard is the runtime's
(:mod:`dispatcher.runtime.url_guard`), since its connector enforces it.

``webhook_events`` writes the organisation's outbound webhook events in the transaction of the
status change they report (the write-back's, a callback's, an inbox mark's, a cancel's), and
``webhook_posting`` runs them as an outbox of their own: reserved, claimed, posted signed through
the same runtime, backoff, circuit store and URL guard, retried, logged.
"""
