"""The interface every chat adapter offers the composition root."""

from __future__ import annotations

from typing import Protocol


class Adapter(Protocol):
    """A running connection to one chat platform (or the terminal)."""

    name: str

    @property
    def ready(self) -> bool:
        """Connected and serving (what ``/readyz`` reports)."""

    async def start(self) -> None:
        """Connect and begin handling events; returns once running."""

    async def stop(self) -> None:
        """Disconnect cleanly; safe to call more than once."""
