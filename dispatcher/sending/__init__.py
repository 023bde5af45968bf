"""Sending one batch of deliveries.

``batch`` orchestrates: ``store`` claims the rows, ``plan`` loads and renders them into jobs with
their candidate integrations (no HTTP), ``execute`` sends the jobs concurrently through the
providers (no database), and ``store`` writes the outcomes back. ``circuit``, ``backoff``,
``rendering`` and ``conditions`` are the policies they use; the URL guard is the runtime's
(:mod:`dispatcher.runtime.url_guard`), since its connector enforces it.
"""
