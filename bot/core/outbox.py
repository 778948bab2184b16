"""The outbox's vocabulary: where a staged delivery stands, and how one attempt at it ended."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """A delivery row's status (stored in ``deliveries.status``)."""

    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"


UNFINISHED = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})
"""Still to send, or being sent: what a backlog counts and a revoked install cancels."""


class DeliveryOutcome(StrEnum):
    """How one attempt ended, as told to the outcome hook (metrics, webhook bookkeeping)."""

    DONE = "done"
    FAILED = "failed"
    RETRY = "retry"
    EXHAUSTED = "exhausted"
    """Failed after the last allowed attempt."""
