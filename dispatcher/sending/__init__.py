"""Sending deliveries: claim a batch, resolve integrations, send concurrently, write back."""
