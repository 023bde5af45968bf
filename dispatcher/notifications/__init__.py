"""Notifications: from a trigger to due deliveries in the outbox.

``triggers`` validates an event and has its notification and delivery rows written (``events``
holds the event models, ``writing`` builds and inserts the rows, ``group_commit`` shares one
transaction between concurrent single triggers); ``outbox`` finds due deliveries in the
database; ``enqueue`` is the only module that hands work to the broker; ``scheduling`` fires
cron schedules; ``status`` reads a transaction's deliveries back; ``broadcast`` triggers every
subscriber in chunks; ``cancellation`` cancels what a transaction has not sent yet; ``erasure``
erases a deleted subscriber, keeping an anonymous record of what was sent.
"""
