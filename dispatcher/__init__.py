"""Notification and action dispatcher."""
