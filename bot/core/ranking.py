"""Ranking of shared workarounds (pure): recent successes first, few votes treated with doubt.

score = Wilson lower bound (95 %) of the share of "worked" votes, where each vote weighs
``0.5 ** (age / HALF_LIFE)``. A fix that worked for many people yesterday beats one that worked
for a few last month; one lucky vote does not beat twenty good ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

HALF_LIFE = timedelta(days=7)
"""A vote counts half after this long, a quarter after twice as long."""
Z_95 = 1.959964
"""Normal quantile of the 95 % two-sided confidence interval."""


@dataclass(frozen=True, slots=True)
class Vote:
    """One user's verdict on a workaround (the latest, if they changed their mind)."""

    worked: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Candidate:
    """What ranking needs of a workaround."""

    id: int
    created_at: datetime
    votes: tuple[Vote, ...] = ()


def vote_weight(at: datetime, now: datetime, half_life: timedelta = HALF_LIFE) -> float:
    """How much a vote cast at ``at`` still counts at ``now`` (1 when fresh; future ones too)."""
    age = max(timedelta(), now - at)
    return float(0.5 ** (age / half_life))


def decayed_counts(
    votes: Iterable[Vote], now: datetime, half_life: timedelta = HALF_LIFE
) -> tuple[float, float]:
    """(worked, didn't work) with every vote weighted by its age."""
    worked = failed = 0.0
    for vote in votes:
        weight = vote_weight(vote.at, now, half_life)
        if vote.worked:
            worked += weight
        else:
            failed += weight
    return worked, failed


def wilson_lower_bound(positive: float, total: float, z: float = Z_95) -> float:
    """Lower end of the Wilson score interval for ``positive`` successes out of ``total``."""
    if total <= 0:
        return 0.0
    share = positive / total
    z2 = z * z
    centre = share + z2 / (2 * total)
    spread = z * math.sqrt(max(0.0, share * (1 - share) / total + z2 / (4 * total * total)))
    return max(0.0, (centre - spread) / (1 + z2 / total))


def score(votes: Iterable[Vote], now: datetime, half_life: timedelta = HALF_LIFE) -> float:
    """A workaround's score in [0, 1): the higher, the surer it works now."""
    worked, failed = decayed_counts(votes, now, half_life)
    return wilson_lower_bound(worked, worked + failed)


def rank(candidates: Sequence[Candidate], now: datetime) -> list[Candidate]:
    """Best first; equal scores put the newer workaround first, then the lower id."""
    return sorted(
        candidates,
        key=lambda c: (-score(c.votes, now), -c.created_at.timestamp(), c.id),
    )
