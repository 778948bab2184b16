"""Ranking of workarounds and FAQ duration estimates (pure, fixed inputs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.faq_facts import (
    ComponentChange,
    affected_components,
    estimate_duration,
    remaining,
    says_cause,
    says_compensation,
    similar_durations,
)
from bot.core.history import PastIncident
from bot.core.ranking import Candidate, Vote, decayed_counts, rank, score, wilson_lower_bound

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def votes(worked: int, failed: int, *, days_ago: float = 0) -> tuple[Vote, ...]:
    at = NOW - timedelta(days=days_ago)
    return tuple(Vote(True, at) for _ in range(worked)) + tuple(
        Vote(False, at) for _ in range(failed)
    )


def test_wilson_lower_bound_known_values() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(1, 1) == pytest.approx(0.2065, abs=1e-4)
    assert wilson_lower_bound(9, 10) == pytest.approx(0.5958, abs=1e-4)
    assert wilson_lower_bound(90, 100) == pytest.approx(0.8256, abs=1e-4)
    assert wilson_lower_bound(0, 5) == 0.0


def test_votes_halve_every_week() -> None:
    worked, failed = decayed_counts(votes(4, 2, days_ago=7), NOW)
    assert (worked, failed) == (pytest.approx(2.0), pytest.approx(1.0))
    assert decayed_counts(votes(1, 0, days_ago=-1), NOW) == (1.0, 0.0)  # clock skew: no boost


def test_fixed_votes_rank_as_expected() -> None:
    many_good = Candidate(1, NOW - timedelta(days=1), votes(20, 2))
    one_lucky = Candidate(2, NOW - timedelta(days=1), votes(1, 0))
    stale_good = Candidate(3, NOW - timedelta(days=60), votes(20, 0, days_ago=60))
    mixed = Candidate(4, NOW - timedelta(days=1), votes(5, 5))
    no_votes_new = Candidate(5, NOW, ())
    no_votes_old = Candidate(6, NOW - timedelta(days=3), ())
    ranked = [
        c.id
        for c in rank([no_votes_old, mixed, stale_good, one_lucky, many_good, no_votes_new], NOW)
    ]
    assert ranked == [1, 4, 2, 3, 5, 6]
    assert score(many_good.votes, NOW) > score(mixed.votes, NOW) > 0


def test_duration_estimate_is_the_interquartile_range_of_similar_incidents() -> None:
    def past(minutes: int, impact: str = "major", days_ago: int = 10) -> PastIncident:
        start = NOW - timedelta(days=days_ago)
        return PastIncident(start, start + timedelta(minutes=minutes), impact)

    history = [
        past(m, days_ago=d)
        for d, m in zip(range(10, 17), (30, 60, 90, 120, 150, 180, 600), strict=True)
    ]
    history += [past(5, "minor"), PastIncident(NOW - timedelta(hours=1), None, "major")]
    durations = similar_durations(history, impact="major")
    assert len(durations) == 7
    estimate = estimate_duration(durations)
    assert estimate is not None
    assert (estimate.low, estimate.median, estimate.high, estimate.count) == (
        timedelta(minutes=75),
        timedelta(minutes=120),
        timedelta(minutes=165),
        7,
    )
    assert remaining(estimate, timedelta(minutes=100)) == (timedelta(), timedelta(minutes=65))
    assert estimate_duration(durations[:2]) is None


def test_cause_and_compensation_statements() -> None:
    assert says_cause("A network routing misconfiguration caused traffic to be dropped.")
    assert says_cause("A fix is being implemented.", "identified")
    assert not says_cause("We are currently investigating this issue.", "investigating")
    assert says_compensation("Affected customers will receive a service credit.")
    assert not says_compensation("We are monitoring the results.")


def test_affected_components_by_latest_change() -> None:
    changes = [
        ComponentChange("API", "major_outage", NOW - timedelta(minutes=40)),
        ComponentChange("Console", "degraded_performance", NOW - timedelta(minutes=10)),
        ComponentChange("Console", "operational", NOW - timedelta(minutes=5)),
        ComponentChange("Chat", "partial_outage", NOW - timedelta(minutes=20)),
    ]
    assert affected_components(changes, NOW) == [
        ("API", "major_outage", timedelta(minutes=40)),
        ("Chat", "partial_outage", timedelta(minutes=20)),
    ]
