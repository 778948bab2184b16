"""Delivery of alerts to chat channels: the outbox, its worker, and the sender interface."""
