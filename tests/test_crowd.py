"""The crowd spike detector on synthetic report streams (seeded, simulated time, no clock)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.crowd import (
    CrowdAssessment,
    CrowdConfig,
    CrowdLevel,
    CrowdMemory,
    ProbeSignal,
    Report,
    bucket_of,
    evaluate,
    expected_per_hour,
    learn_history,
    observe,
    window_facts,
)
from bot.core.crowd_codec import decode_crowd_memory, encode_crowd_memory
from bot.core.poisson import poisson_log_sf, surprise_of

CONFIG = CrowdConfig()
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
NO_PROBE = ProbeSignal()
Rate = Callable[[datetime], float]  # reports per hour at a moment


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return poisson(rng, lam / 2) + poisson(rng, lam / 2)
    limit, k, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def seasonal(mean: float) -> Rate:
    """A daily wave, 0.5x at 03:00 UTC to 1.5x at 15:00 UTC."""
    return lambda at: mean * (1 + 0.5 * math.sin(2 * math.pi * (at.hour + at.minute / 60 - 9) / 24))


def flat(per_hour: float) -> Rate:
    return lambda _at: per_hour


def trained(rate: Rate, rng: random.Random | None = None, days: int = 14) -> CrowdMemory:
    """A memory that learned `days` of hourly history before MONDAY (exact counts without rng)."""
    hours = []
    for hour in range(days * 24):
        start = MONDAY - timedelta(hours=days * 24 - hour)
        mean = rate(start + timedelta(minutes=30))
        hours.append((start, poisson(rng, mean) if rng else round(mean)))
    return learn_history(CrowdMemory(), hours, config=CONFIG)


def reports(
    rng: random.Random,
    start: datetime,
    minutes: float,
    rate: Rate,
    *,
    communities: int = 30,
    prefix: str = "u",
) -> list[Report]:
    """Poisson reports from new people, spread over Zipf-weighted communities."""
    names = [f"c{i}" for i in range(communities)]
    weights = [1 / (i + 1) for i in range(communities)]
    out = []
    for step in range(math.ceil(minutes)):
        minute = start + step * MINUTE
        for _ in range(poisson(rng, rate(minute) / 60)):
            out.append(
                Report(
                    at=minute + MINUTE * rng.random(),
                    reporter=f"{prefix}{rng.getrandbits(48)}",
                    community=rng.choices(names, weights)[0],
                )
            )
    return sorted(out, key=lambda r: r.at)


def run(
    memory: CrowdMemory,
    stream: Iterable[Report],
    start: datetime,
    minutes: int,
    *,
    probe: ProbeSignal = NO_PROBE,
    config: CrowdConfig = CONFIG,
) -> tuple[CrowdMemory, list[CrowdAssessment]]:
    """Observe the stream minute by minute and evaluate at the end of each minute."""
    pending = sorted(stream, key=lambda r: r.at)
    seen: list[CrowdAssessment] = []
    index = 0
    for step in range(1, minutes + 1):
        now = start + step * MINUTE
        batch = []
        while index < len(pending) and pending[index].at <= now:
            batch.append(pending[index])
            index += 1
        memory = observe(memory, batch, config=config)
        before = memory
        memory, assessment = evaluate(memory, now=now, config=config, probe=probe)
        check_hysteresis(before, memory, assessment, now, config)
        seen.append(assessment)
    return memory, seen


def check_hysteresis(
    before: CrowdMemory,
    after: CrowdMemory,
    assessment: CrowdAssessment,
    now: datetime,
    config: CrowdConfig,
) -> None:
    """Levels move only as the rules say: up to what the entry conditions allow, down only after
    the minimum hold and when the leave threshold is no longer met."""
    old, new = assessment.previous, assessment.level
    assert old is before.level
    assert new is after.level
    if new.rank > old.rank:
        assert new is assessment.enter_level
        assert after.level_since == now
        assert after.surge_started is not None
    elif new.rank < old.rank:
        assert before.level_since is None or now - before.level_since >= config.min_hold
        assert assessment.stay_level.rank < old.rank
        assert new.rank == max(assessment.stay_level.rank, assessment.enter_level.rank)
    else:
        assert after.level_since == before.level_since
    if new is CrowdLevel.NONE:
        assert after.surge_started is None


def first_flag(seen: list[CrowdAssessment]) -> int | None:
    """Minutes (1-based evaluations) until the first level above NONE."""
    return next((i + 1 for i, a in enumerate(seen) if a.level is not CrowdLevel.NONE), None)


def changes(seen: list[CrowdAssessment]) -> int:
    return sum(1 for a in seen if a.level is not a.previous)


# ---------------------------------------------------------------- the Poisson tail


@pytest.mark.parametrize(("n", "mu"), [(0, 3.0), (1, 0.2), (3, 3.0), (5, 2.0), (12, 4.5), (4, 9)])
def test_poisson_tail_matches_a_direct_sum(n: int, mu: float) -> None:
    direct = 1 - sum(math.exp(-mu) * mu**k / math.factorial(k) for k in range(n))
    assert math.exp(poisson_log_sf(n, mu)) == pytest.approx(direct, rel=1e-9, abs=1e-15)


def test_poisson_tail_stays_finite_far_out() -> None:
    log_p = poisson_log_sf(2000, 10.0)  # about 10^-3700: far below the smallest float
    assert math.isfinite(log_p)
    assert log_p < -8000
    assert poisson_log_sf(5, 0.0) == -math.inf
    assert surprise_of(20, 3.0, tests=1) > surprise_of(20, 3.0, tests=5) > 8


# ---------------------------------------------------------------- baseline


def test_baseline_learns_the_seasonal_shape() -> None:
    memory = trained(seasonal(120), random.Random(1))
    night = expected_per_hour(memory, MONDAY + timedelta(hours=3), config=CONFIG)
    afternoon = expected_per_hour(memory, MONDAY + timedelta(hours=15), config=CONFIG)
    assert night == pytest.approx(60, rel=0.25)
    assert afternoon == pytest.approx(180, rel=0.15)
    assert memory.learned_hours == 14 * 24
    assert bucket_of(MONDAY) == 0
    assert bucket_of(MONDAY - timedelta(minutes=1)) == 167


def test_a_quiet_service_is_floored() -> None:
    memory = trained(flat(0.5))
    assert expected_per_hour(memory, MONDAY, config=CONFIG) == CONFIG.floor_per_hour


def test_seasonal_noise_raises_nothing() -> None:
    rng = random.Random(2)
    memory = trained(seasonal(120), rng)
    _, seen = run(memory, reports(rng, MONDAY, 3 * 1440, seasonal(120)), MONDAY, 3 * 1440)
    assert all(a.level is CrowdLevel.NONE for a in seen)
    assert max(a.surprise for a in seen) < CONFIG.rules[0].enter_surprise


def test_an_untrained_detector_raises_nothing() -> None:
    rng = random.Random(3)
    crowd = reports(rng, MONDAY, 30, flat(3000), communities=20)
    _, seen = run(CrowdMemory(), crowd, MONDAY, 30)
    assert all(a.level is CrowdLevel.NONE for a in seen)
    assert seen[-1].facts.ratio is None


# ---------------------------------------------------------------- surges


SURGE_AT = MONDAY + timedelta(hours=14, minutes=20)


def surge_run(
    factor: float,
    mean: float = 240,
    minutes: int = 40,
    seed: int = 4,
    probe: ProbeSignal = NO_PROBE,
) -> list[CrowdAssessment]:
    rng = random.Random(seed)
    memory = trained(seasonal(mean), rng)
    warmup = SURGE_AT - timedelta(hours=2)
    memory, _ = run(memory, reports(rng, warmup, 120, seasonal(mean)), warmup, 120)
    base = seasonal(mean)
    crowd = reports(rng, SURGE_AT, minutes, lambda at: factor * base(at), prefix="s")
    _, seen = run(memory, crowd, SURGE_AT, minutes + 40, probe=probe)
    return seen


@pytest.mark.parametrize(("factor", "within", "peak"), [
    (10, 2, CrowdLevel.WIDESPREAD),
    (5, 3, CrowdLevel.REPORTED),
    (3, 10, CrowdLevel.POSSIBLE),
])  # fmt: skip
def test_surges_are_flagged(factor: float, within: int, peak: CrowdLevel) -> None:
    seen = surge_run(factor)
    flagged = first_flag(seen)
    assert flagged is not None
    assert flagged <= within
    assert max(a.level.rank for a in seen) >= peak.rank
    raised = seen[flagged - 1].facts
    assert raised.first_report_at is not None
    assert abs(raised.first_report_at - SURGE_AT) <= timedelta(minutes=1)  # lead time is right
    assert raised.reporters >= CONFIG.rules[0].min_reporters
    assert raised.communities >= 2
    at_peak = seen[30].facts  # 30 minutes in: the 10-minute window is all surge
    assert at_peak.ratio == pytest.approx(factor, rel=0.4)


def test_the_surge_fades_back_to_none_once() -> None:
    seen = surge_run(5, minutes=30)
    assert seen[-1].level is CrowdLevel.NONE
    ups = [i for i, a in enumerate(seen) if a.previous is CrowdLevel.NONE and a.level.rank > 0]
    assert len(ups) == 1  # one warning, not one per flap


def test_a_slow_ramp_is_flagged_once_it_is_well_above_usual() -> None:
    rng = random.Random(5)
    base = seasonal(120)
    memory = trained(base, rng)
    ramp_at = MONDAY + timedelta(hours=12)

    def ramp(at: datetime) -> float:  # 1x to 6x the usual over two hours
        return base(at) * (1 + 5 * min(1.0, (at - ramp_at) / timedelta(hours=2)))

    _, seen = run(memory, reports(rng, ramp_at, 150, ramp), ramp_at, 150)
    flagged = first_flag(seen)
    assert flagged is not None
    assert 15 <= flagged <= 90  # not while it is still about usual; well before it peaks


def flag_after_each_report(
    memory: CrowdMemory, stream: list[Report], config: CrowdConfig
) -> datetime | None:
    """Evaluate right after each report; when the first level above NONE came up."""
    for report in stream:
        memory = observe(memory, [report], config=config)
        memory, assessment = evaluate(memory, now=report.at, config=config)
        if assessment.level is not CrowdLevel.NONE:
            return report.at
    return None


def test_the_cusum_path_flags_a_busy_surge_sooner_than_the_windows() -> None:
    """A 5x surge on a busy service: the CUSUM (look-back log-likelihood ratio against the
    learned baseline) raises POSSIBLE before the windows, whose reports must span 60 s."""
    windows_only = replace(CONFIG, cusum_factor=0.0)
    gains = []
    for seed in range(8):
        rng = random.Random(100 + seed)
        memory = trained(flat(240), rng)
        warmup = SURGE_AT - timedelta(minutes=40)
        memory, _ = run(memory, reports(rng, warmup, 40, flat(240)), warmup, 40)
        surge = reports(rng, SURGE_AT, 10, flat(5 * 240), prefix="s")
        with_cusum = flag_after_each_report(memory, surge, CONFIG)
        without = flag_after_each_report(memory, surge, windows_only)
        assert with_cusum is not None
        assert without is not None
        assert with_cusum <= without
        gains.append((without - with_cusum) / timedelta(seconds=1))
    assert sorted(gains)[len(gains) // 2] >= 8  # seconds sooner, typically (seeds 100-107: 11.5)
    assert max(gains) >= 30


def test_the_cusum_path_needs_a_spread_crowd() -> None:
    """Eleven reporters on a quiet service: one community is capped (as in the windows), and
    a burst within 10 s is below the path's 20 s span; spread over 20 s and 11 communities,
    it is a crowd."""
    memory = trained(flat(6))
    now = MONDAY + timedelta(seconds=25)

    def level(step_s: float, communities: int) -> CrowdLevel:
        burst = [
            Report(MONDAY + timedelta(seconds=step_s * i), f"b{i}", f"c{i % communities}")
            for i in range(11)
        ]
        _, assessment = evaluate(observe(memory, burst, config=CONFIG), now=now, config=CONFIG)
        return assessment.level

    assert level(2, 1) is CrowdLevel.NONE  # one server's raid
    assert level(1, 11) is CrowdLevel.NONE  # all within 10 s
    assert level(2, 11) is CrowdLevel.POSSIBLE


# ---------------------------------------------------------------- abuse


def test_one_user_flooding_counts_once() -> None:
    memory = trained(flat(60))
    flood = [
        Report(at=MONDAY + timedelta(seconds=i * 0.05), reporter="spammer", community=f"c{i % 50}")
        for i in range(10_000)
    ]
    memory, seen = run(memory, flood, MONDAY, 20)
    assert all(a.level is CrowdLevel.NONE for a in seen)
    facts = window_facts(memory, now=MONDAY + 10 * MINUTE, window=10 * MINUTE, config=CONFIG)
    assert facts.reporters == 1
    assert facts.reports == 10_000  # all seen, one counted
    assert memory.hour_count == 1


def test_one_community_flooding_with_many_users_does_not_trigger_alone() -> None:
    rng = random.Random(6)
    memory = trained(flat(60), rng)
    raid = [
        Report(at=MONDAY + timedelta(seconds=i), reporter=f"raider{i}", community="one-server")
        for i in range(600)
    ]
    background = reports(rng, MONDAY, 30, flat(60))
    _, seen = run(memory, raid + background, MONDAY, 30)
    assert all(a.level is CrowdLevel.NONE for a in seen)
    raided = seen[5]
    assert raided.facts.reporters > 300
    assert all(w.counted < w.reporters / 10 for w in raided.windows)  # the server is capped


def test_a_quiet_service_needs_a_real_crowd() -> None:
    memory = trained(flat(1))
    two = [Report(MONDAY + timedelta(seconds=30 * i), f"p{i}", f"c{i}") for i in range(2)]
    _, seen = run(memory, two, MONDAY, 15)
    assert all(a.level is CrowdLevel.NONE for a in seen)
    crowd = [Report(MONDAY + timedelta(seconds=10 * i), f"q{i}", f"c{i % 5}") for i in range(15)]
    _, seen = run(memory, crowd, MONDAY, 15)
    assert first_flag(seen) is not None


# ---------------------------------------------------------------- probes


def modest_crowd() -> tuple[CrowdMemory, list[Report]]:
    """Eight people from four communities in four minutes where about one is usual: notable,
    but not enough on its own."""
    memory = trained(flat(15))
    crowd = [Report(MONDAY + timedelta(seconds=30 * i), f"m{i}", f"c{i % 4}") for i in range(8)]
    return memory, crowd


def test_a_failing_probe_lowers_the_bar() -> None:
    memory, crowd = modest_crowd()
    _, alone = run(memory, crowd, MONDAY, 10)
    assert all(a.level is CrowdLevel.NONE for a in alone)
    _, probed = run(memory, crowd, MONDAY, 10, probe=ProbeSignal(failing=True))
    flagged = first_flag(probed)
    assert flagged is not None
    assert probed[flagged - 1].facts.probe_failing


def test_a_network_wide_failure_does_not() -> None:
    memory, crowd = modest_crowd()
    suspect = ProbeSignal(failing=True, network_suspect=True)
    _, seen = run(memory, crowd, MONDAY, 10, probe=suspect)
    assert all(a.level is CrowdLevel.NONE for a in seen)
    assert not seen[-1].facts.probe_failing


# ---------------------------------------------------------------- hysteresis


def test_a_level_holds_its_minimum_time_then_leaves() -> None:
    memory = trained(flat(60))
    burst = [Report(MONDAY + timedelta(seconds=9 * i), f"b{i}", f"c{i % 5}") for i in range(20)]
    memory, seen = run(memory, burst, MONDAY, 40)
    flagged = first_flag(seen)
    assert flagged is not None
    levels = [a.level for a in seen]
    dropped = next(i for i in range(flagged, len(seen)) if levels[i] is CrowdLevel.NONE) + 1
    assert dropped - flagged >= CONFIG.min_hold / MINUTE
    assert changes(seen) == 2  # up once, down once


def test_sustain_delays_a_raise_until_the_surge_has_held() -> None:
    memory = trained(flat(60))
    burst = [Report(MONDAY + timedelta(seconds=9 * i), f"b{i}", f"c{i % 5}") for i in range(40)]
    _, prompt = run(memory, burst, MONDAY, 10)
    patient = replace(CONFIG, sustain=timedelta(minutes=2))
    _, held = run(memory, burst, MONDAY, 10, config=patient)
    first, later = first_flag(prompt), first_flag(held)
    assert first is not None
    assert later == first + 2


def test_no_flapping_at_the_threshold() -> None:
    """A crowd hovering around the entry threshold for two hours: one warning, held."""
    rng = random.Random(7)
    memory = trained(flat(60), rng)
    hover = reports(rng, MONDAY, 120, flat(60 * 3.2), communities=20)
    _, seen = run(memory, hover, MONDAY, 120)
    entered = [a for a in seen if a.previous is CrowdLevel.NONE and a.level is not CrowdLevel.NONE]
    assert len(entered) == 1
    near = [a.surprise for a in seen]
    assert min(near) < CONFIG.rules[0].enter_surprise < max(near)  # it did hover
    assert changes(seen) <= 3


def test_the_baseline_does_not_learn_an_outage() -> None:
    rng = random.Random(8)
    memory = trained(flat(60), rng)
    hour = MONDAY + timedelta(hours=1)
    before = memory.baseline[bucket_of(hour)]
    memory, _ = run(memory, reports(rng, MONDAY, 60, flat(60)), MONDAY, 60)
    memory, _ = run(memory, reports(rng, hour, 60, flat(600)), hour, 60)
    memory, _ = run(memory, [], hour + timedelta(hours=1), 2)
    assert memory.baseline[bucket_of(hour)] == before  # flagged hour: not learned
    assert memory.baseline[bucket_of(MONDAY)] != memory.baseline[bucket_of(hour)]


# ---------------------------------------------------------------- memory


def test_memory_round_trips_through_its_codec() -> None:
    rng = random.Random(9)
    memory = trained(seasonal(120), rng)
    stream = reports(rng, SURGE_AT, 20, lambda at: 6 * seasonal(120)(at))
    memory, _seen = run(memory, stream, SURGE_AT, 12)
    assert memory.level is not CrowdLevel.NONE
    assert memory.surge_started is not None
    text = encode_crowd_memory(memory)
    again = decode_crowd_memory(text)
    assert again == memory
    assert encode_crowd_memory(again) == text
    later = SURGE_AT + 13 * MINUTE
    assert evaluate(again, now=later, config=CONFIG) == evaluate(memory, now=later, config=CONFIG)


@pytest.mark.parametrize("text", ["", "[]", '{"v": 99}', '{"v": 1}', '{"v": 1, "baseline": [1]}'])
def test_garbage_is_not_a_memory(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any reason is fine
        decode_crowd_memory(text)


def test_naive_times_are_taken_as_utc() -> None:
    memory = trained(flat(60))
    naive = observe(memory, [Report(datetime(2026, 3, 2, 0, 0, 5), "n", "c")], config=CONFIG)
    aware = observe(memory, [Report(MONDAY + timedelta(seconds=5), "n", "c")], config=CONFIG)
    assert naive == aware


# ---------------------------------------------------------------- properties


TRAINED = trained(flat(30))
QUICK = replace(CONFIG, min_hold=timedelta(minutes=3))

events = st.lists(
    st.tuples(
        st.floats(0, 1),  # when, as a share of the example's span (any order: late reports)
        st.sampled_from(["report", "report", "report", "evaluate"]),
        st.integers(0, 30),  # reporter
        st.integers(0, 5),  # community
        st.sampled_from([ProbeSignal(), ProbeSignal(True), ProbeSignal(True, True)]),
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(
    events=events,
    span=st.sampled_from([300, 1800, 4 * 3600]),
    ordered=st.booleans(),
    burst=st.tuples(st.integers(0, 80), st.floats(0, 1), st.integers(1, 6)),
    ticks=st.sampled_from([ProbeSignal(), ProbeSignal(True), ProbeSignal(True, True)]),
)
def test_any_stream_is_handled_and_levels_obey_hysteresis(
    events: list[tuple[float, str, int, int, ProbeSignal]],
    span: int,
    ordered: bool,
    burst: tuple[int, float, int],
    ticks: ProbeSignal,
) -> None:
    """Arbitrary reports and evaluations (plus a crowd burst and an evaluation every 30 s, so
    that levels are reached and left) never raise, and levels move only by the rules."""
    count, start, communities = burst
    events = list(events)
    for i in range(count):  # `count` people from `communities` servers within three minutes
        share = min(1.0, start + i * 180 / max(count, 1) / span)
        events.append((share, "report", 1000 + i, i % communities, ProbeSignal()))
    events += [(t * 30 / span, "evaluate", 0, 0, ticks) for t in range(span // 30 + 1)]
    if ordered:
        events.sort(key=lambda e: (e[0], e[1] == "evaluate"))
    memory = TRAINED
    for share, kind, who, where, probe in events:
        at = MONDAY + timedelta(seconds=share * span)
        if kind == "report":
            memory = observe(memory, [Report(at, f"r{who}", f"c{where}")], config=QUICK)
            continue
        before = memory
        memory, assessment = evaluate(memory, now=at, config=QUICK, probe=probe)
        if before.latest is None or at >= before.latest:  # time moving forward
            check_hysteresis(before, memory, assessment, at, QUICK)
        assert all(w.counted <= w.reporters for w in assessment.windows)
    assert decode_crowd_memory(encode_crowd_memory(memory)) == memory
