"""Notifications: from a trigger to due deliveries in the outbox.

``triggers`` validates an event and writes its notification and delivery rows (``events`` holds
the event models); ``outbox`` finds due deliveries in the database; ``enqueue`` is the only module
that hands work to the broker; ``scheduling`` fires cron schedules; ``status`` reads a
transaction's deliveries back; ``broadcast`` triggers every subscriber in chunks;
``cancellation`` cancels what a transaction has not sent yet; ``erasure`` erases a deleted
subscriber, keeping an anonymous record of what was sent.
"""
