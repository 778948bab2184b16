"""A list of callbacks one producer calls: what lets parts be wired at construction.

The poller is built before the outbox worker and the metrics that want its events; it gets an
`Observers` at construction, and they subscribe to it as they are built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Observers(Generic[T]):
    """Callables told each value, in subscription order; itself a callable for the producer."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], None]] = []

    def subscribe(self, callback: Callable[[T], None]) -> None:
        """Call ``callback`` with every later value."""
        self._callbacks.append(callback)

    def __call__(self, value: T) -> None:
        for callback in self._callbacks:
            callback(value)
