"""The overview's headline: how things stand across every tracked service, in one sentence.

/status and the dashboard both open with it, so they say the same thing about the same states.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.service_state import ServiceState
from bot.core.wording import plural


@dataclass(frozen=True, slots=True)
class Headline:
    """Counts behind the overview's first sentence."""

    total: int
    trouble: int
    """Services degraded or worse."""
    unreadable: int
    """Services whose status page could not be read (state unknown)."""
    warnings: int
    """Services with an open early warning from user reports."""
    worst: ServiceState
    """The most severe state (operational when none is worse)."""

    @property
    def sentence(self) -> str:
        """The headline in words."""
        if not self.total:
            return "No services are followed yet."  # never "operational" about nothing
        if self.unreadable == self.total:
            return "No status page could be read yet, so the state of every service is unknown."
        if self.trouble:
            parts = [f"{self.trouble} of {self.total} services report problems."]
        elif self.unreadable:
            parts = ["No service reports problems."]
        else:
            parts = ["All services are operational."]
        if self.warnings:
            warned = plural(self.warnings, "early warning")
            parts.append(f"{warned} from user reports (unconfirmed).")
        if self.unreadable:
            parts.append(f"{plural(self.unreadable, 'status page')} could not be read.")
        return " ".join(parts)


def headline(states: Iterable[ServiceState], *, warnings: int) -> Headline:
    """The headline over every service's state and the number of open early warnings."""
    seen = list(states)
    return Headline(
        total=len(seen),
        trouble=sum(1 for state in seen if state.in_trouble),
        unreadable=sum(1 for state in seen if state is ServiceState.UNKNOWN),
        warnings=warnings,
        worst=max([ServiceState.OPERATIONAL, *seen], key=lambda s: s.rank),
    )
