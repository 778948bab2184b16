"""A delivery as a worker round reads it, and what an outcome hook is told of one.

A round loads up to a batch of deliveries at once; as plain values (a frozen dataclass) instead
of ORM rows they cost several times less to load, which is most of a delivery's share of the
worker's own CPU on a large fan-out (`bench/scale.py`). A single attempt still works on the ORM
row (`DeliveryAttempts.process`); both are `Tried` to the outcome hook.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from bot.store.models import DeliveryRow

DELIVERIES = DeliveryRow.__table__  # type: ignore[attr-defined]
"""The deliveries table, for plain (not ORM) statements on a round's rows."""


class Tried(Protocol):
    """What an outcome hook reads of a delivery, as stored after the attempt."""

    @property
    def id(self) -> int | None: ...
    @property
    def platform(self) -> str: ...
    @property
    def subscription_id(self) -> int: ...
    @property
    def alert_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RoundDelivery:
    """The columns of a `DeliveryRow` that a round reads (a `Tried` too)."""

    id: int
    key: str
    alert_id: int
    subscription_id: int
    platform: str
    action: str
    body: str
    status: str
    attempts: int
    last_error: str | None


ROUND_DELIVERY_COLUMNS = [
    getattr(DELIVERIES.c, field.name) for field in dataclasses.fields(RoundDelivery)
]
"""The columns to select (or return) for `RoundDelivery`, in its fields' order."""
