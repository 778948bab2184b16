"""The crowd spike detector: are /reports for a service surging above its usual level? Pure.

No I/O and no clock: time comes in with each call. The caller keeps one `CrowdMemory` per service,
feeds it reports with `observe` and calls `evaluate` after each report and every minute; both
return the new memory to store (`crowd_codec` makes it JSON). docs/crowd.md explains the model.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.core.crowd_cusum import cusum_score
from bot.core.poisson import poisson_log_sf, surprise_of

WEEK_HOURS = 168
HOUR = timedelta(hours=1)
_WEEK_START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday, 00:00 UTC


class CrowdLevel(StrEnum):
    """How loud the crowd is, quietest first."""

    NONE = "none"
    POSSIBLE = "possible"
    REPORTED = "reported"
    WIDESPREAD = "widespread"

    @property
    def rank(self) -> int:  # 0 for NONE up to 3 for WIDESPREAD
        return LEVELS.index(self)


LEVELS = (CrowdLevel.NONE, CrowdLevel.POSSIBLE, CrowdLevel.REPORTED, CrowdLevel.WIDESPREAD)


@dataclass(frozen=True, slots=True)
class LevelRule:
    """When a level is entered, and the surprise below which it may be left."""

    enter_surprise: float  # -log10 of the window-corrected Poisson tail probability
    leave_surprise: float
    min_reporters: int  # distinct reporters in the window that shows the surge
    min_communities: int  # distinct communities among them
    min_ratio: float  # counted reporters / expected, in that window


DEFAULT_RULES = (  # enter surprise, leave surprise, reporters, communities, ratio
    LevelRule(6.0, 2.5, 6, 2, 2.5),  # POSSIBLE
    LevelRule(10.0, 5.0, 12, 3, 4.0),  # REPORTED
    LevelRule(20.0, 10.0, 30, 5, 8.0),  # WIDESPREAD
)


@dataclass(frozen=True, slots=True)
class CrowdConfig:
    """The detector's thresholds; docs/crowd.md says why each has its value."""

    windows: tuple[timedelta, ...] = tuple(timedelta(minutes=m) for m in (2, 3, 5, 10, 30))
    facts_window: timedelta = timedelta(minutes=10)
    floor_per_hour: float = 6.0  # a quiet service is treated as if it had this many reports/hour
    learning_rate: float = 0.2  # EWMA weight of a new hour in its time-of-week bucket
    learn_cap: float = 3.0  # an hour teaches at most this many times the usual count
    min_history_hours: int = 24  # learned hours before any level is raised
    rules: tuple[LevelRule, LevelRule, LevelRule] = DEFAULT_RULES  # POSSIBLE, REPORTED, WIDESPREAD
    dominance: float = 0.25  # a community counts for at most this share of all the others ...
    dominance_slack: int = 2  # ... plus this many reporters
    min_span: timedelta = timedelta(seconds=60)  # a window's reports must span this long
    sustain: timedelta = timedelta(0)  # a raise must keep holding this long before it is made
    min_hold: timedelta = timedelta(minutes=10)  # a level holds at least this long
    probe_surprise_bonus: float = 3.0  # decades of surprise a failing probe is worth ...
    probe_reporters_factor: float = 0.5  # ... and the share of reporters then needed
    cusum_factor: float = 5.0  # the CUSUM path watches for this surge (k x usual); 0: off
    cusum_lookback: timedelta = timedelta(minutes=10)  # how far back it looks
    cusum_threshold: float = 8.6  # its threshold h at the floor rate, + ln(usual / floor)
    cusum_min_span: timedelta = timedelta(seconds=20)  # its reports must span this long

    def __post_init__(self) -> None:
        if min(self.windows, default=timedelta(0)) <= timedelta(0) or self.floor_per_hour <= 0:
            raise ValueError("windows and floor_per_hour must be positive")

    @property
    def horizon(self) -> timedelta:  # how long a reporter is remembered (and counted once)
        return max(*self.windows, self.facts_window)


@dataclass(frozen=True, slots=True)
class Report:
    """One /report (or "I'm affected too") for the service this memory belongs to."""

    at: datetime
    reporter: str  # salted hash of the user
    community: str  # platform + guild/workspace id


@dataclass(frozen=True, slots=True)
class ProbeSignal:
    """What the synthetic probes say about the service now."""

    failing: bool = False
    network_suspect: bool = False  # every probe fails at once: our network, not theirs

    @property
    def strengthens(self) -> bool:  # a failing probe lowers the bar, unless it is our network
        return self.failing and not self.network_suspect


@dataclass(frozen=True, slots=True)
class CrowdMemory:
    """Everything the detector remembers about one service; `crowd_codec` stores it as JSON."""

    baseline: tuple[float, ...] = (0.0,) * WEEK_HOURS  # counted reports/hour, per hour of week
    samples: tuple[int, ...] = (0,) * WEEK_HOURS  # hours learned, per bucket
    hour_start: datetime | None = None  # the hour being counted
    hour_count: int = 0  # counted (new reporter) reports in that hour
    hour_flagged: bool = False  # a level was up during that hour: do not learn from it
    latest: datetime | None = None  # the latest time seen (report or evaluation)
    recent: Mapping[str, tuple[datetime, str]] = field(default_factory=dict)  # reporter -> last
    raw: Mapping[datetime, int] = field(default_factory=dict)  # minute -> reports, repeats too
    level: CrowdLevel = CrowdLevel.NONE
    level_since: datetime | None = None
    pending_since: datetime | None = None  # a raise has been due since (for `sustain`)
    surge_started: datetime | None = None  # first report of the current surge

    @property
    def learned_hours(self) -> int:  # hours of history in the baseline
        return sum(self.samples)


@dataclass(frozen=True, slots=True)
class WindowStat:
    """One look-back window at one moment."""

    window: timedelta
    reporters: int  # distinct reporters
    communities: int
    counted: int  # reporters after capping dominant communities
    expected: float  # usual reporters in such a window (never below the floor)
    surprise: float  # -log10 P(X >= counted), Bonferroni-corrected for the number of windows
    span: timedelta  # from the window's first report to its last


@dataclass(frozen=True, slots=True)
class CrowdFacts:
    """What an alert or a /report reply says (field names as in early_warning.CrowdReading)."""

    level: CrowdLevel
    reports: int  # all reports in the window, repeats included
    reporters: int  # distinct people
    communities: int
    ratio: float | None  # reporters / usual for the window ("9x the usual"); None before history
    first_report_at: datetime | None  # first report of the current surge (for the lead time)
    probe_failing: bool = False
    window_minutes: int = 10
    expected: float = 0.0  # usual reporters in the window


@dataclass(frozen=True, slots=True)
class CrowdAssessment:
    """The outcome of one evaluation."""

    level: CrowdLevel
    previous: CrowdLevel
    facts: CrowdFacts
    surprise: float  # the largest over the windows
    enter_level: CrowdLevel  # the highest level whose entry conditions hold now
    stay_level: CrowdLevel  # the highest level whose leave threshold is still met now
    windows: tuple[WindowStat, ...] = ()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def bucket_of(at: datetime) -> int:
    """The hour-of-week bucket of `at` (0 = Monday 00:00-01:00 UTC)."""
    return int((_utc(at) - _WEEK_START) // HOUR) % WEEK_HOURS


@functools.lru_cache(maxsize=256)
def _smoothed(baseline: tuple[float, ...], samples: tuple[int, ...]) -> tuple[float, ...]:
    """Unlearned buckets take the mean of the learned ones; then 1-2-1 over neighbouring hours,
    which cuts the noise of a young bucket at a negligible bias. Cached: it changes hourly."""
    learned = [b for b, n in zip(baseline, samples, strict=True) if n > 0]
    fill = sum(learned) / len(learned) if learned else 0.0
    raw = [b if n > 0 else fill for b, n in zip(baseline, samples, strict=True)]
    return tuple((raw[h - 1] + 2 * raw[h] + raw[(h + 1) % WEEK_HOURS]) / 4 for h in range(168))


@dataclass(frozen=True, slots=True)
class _Rates:
    per_bucket: tuple[float, ...]
    floor: float

    @classmethod
    def of(cls, memory: CrowdMemory, config: CrowdConfig) -> _Rates:
        return cls(_smoothed(memory.baseline, memory.samples), config.floor_per_hour)

    def at(self, at: datetime) -> float:
        """Usual reports/hour at `at`: interpolated between hour centres, never below the floor."""
        x = (at - _WEEK_START) / HOUR - 0.5
        h0 = math.floor(x)
        f = x - h0
        rates = self.per_bucket
        return max((1 - f) * rates[h0 % WEEK_HOURS] + f * rates[(h0 + 1) % WEEK_HOURS], self.floor)

    def expected(self, now: datetime, window: timedelta) -> float:
        """Usual reporters in the window ending at `now`."""
        return self.at(now - window / 2) * (window / HOUR)


def expected_per_hour(memory: CrowdMemory, at: datetime, *, config: CrowdConfig) -> float:
    """The usual rate of counted reports per hour at `at` (floored), e.g. for the /status chart."""
    return _Rates.of(memory, config).at(_utc(at))


def _learn(
    baseline: list[float], samples: list[int], at: datetime, count: int, config: CrowdConfig
) -> None:
    bucket = bucket_of(at)
    n = samples[bucket]
    if n > 0:  # an outage hour that slipped through teaches at most learn_cap x the usual
        usual = max(baseline[bucket], config.floor_per_hour)
        count = min(count, math.ceil(config.learn_cap * usual))
    alpha = max(config.learning_rate, 1.0 / (n + 1))  # a plain mean until it has enough hours
    baseline[bucket] += alpha * (count - baseline[bucket])
    samples[bucket] = min(n + 1, 100_000)


def learn_history(
    memory: CrowdMemory, hours: Iterable[tuple[datetime, int]], *, config: CrowdConfig
) -> CrowdMemory:
    """Teach the baseline from stored history: (hour start, counted reports), oldest first."""
    baseline, samples = list(memory.baseline), list(memory.samples)
    for start, count in hours:
        _learn(baseline, samples, _utc(start), max(0, int(count)), config)
    return replace(memory, baseline=tuple(baseline), samples=tuple(samples))


def _roll_hours(memory: CrowdMemory, now: datetime, config: CrowdConfig) -> CrowdMemory:
    """Close every hour that ended before `now` into the baseline, unless a level was up in it."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    if memory.hour_start is not None and hour <= memory.hour_start:
        return memory
    up = memory.level is not CrowdLevel.NONE
    if memory.hour_start is None:
        return replace(memory, hour_start=hour, hour_count=0, hour_flagged=up)
    baseline, samples = list(memory.baseline), list(memory.samples)
    start, count, flagged = memory.hour_start, memory.hour_count, memory.hour_flagged
    for _ in range(WEEK_HOURS):  # a longer gap teaches each bucket one zero, no more
        if start >= hour:
            break
        if not flagged:
            _learn(baseline, samples, start, count, config)
        start, count, flagged = start + HOUR, 0, up
    return replace(
        memory,
        baseline=tuple(baseline),
        samples=tuple(samples),
        hour_start=hour,
        hour_count=0,
        hour_flagged=up,
    )


def observe(memory: CrowdMemory, reports: Iterable[Report], *, config: CrowdConfig) -> CrowdMemory:
    """Fold reports (for this memory's service) into memory. A repeat refreshes the reporter but
    is not counted: a reporter counts again only after `config.horizon` without reporting."""
    recent, raw = dict(memory.recent), dict(memory.raw)
    horizon = config.horizon
    latest, count = memory.latest, memory.hour_count
    for report in reports:
        at = _utc(report.at)
        if memory.hour_start is None or at >= memory.hour_start + HOUR:
            memory = _roll_hours(replace(memory, hour_count=count), at, config)
            count = memory.hour_count
        latest = at if latest is None else max(latest, at)
        if at <= latest - horizon:
            continue  # too old to matter
        seen = recent.get(report.reporter)
        if seen is None or seen[0] <= at - horizon:
            count += 1
        if seen is None or at >= seen[0]:
            recent.pop(report.reporter, None)  # re-inserted: the dict stays in time order
            recent[report.reporter] = (at, report.community)
        minute = at.replace(second=0, microsecond=0)
        raw[minute] = raw.get(minute, 0) + 1
    return replace(memory, recent=recent, raw=raw, latest=latest, hour_count=count)


def _forget(
    memory: CrowdMemory, now: datetime, config: CrowdConfig
) -> tuple[Mapping[str, tuple[datetime, str]], Mapping[datetime, int], datetime]:
    """Drop reporters and minutes older than the horizon. `recent` is kept in time order, so
    its first entry tells whether there is anything to drop."""
    latest = now if memory.latest is None else max(memory.latest, now)
    edge = latest - config.horizon
    recent, raw = memory.recent, memory.raw
    if recent and next(iter(recent.values()))[0] <= edge:
        recent = {who: seen for who, seen in recent.items() if seen[0] > edge}
    if raw and next(iter(raw)) <= edge - timedelta(minutes=1):
        raw = {minute: n for minute, n in raw.items() if minute > edge - timedelta(minutes=1)}
    return recent, raw, latest


def _members(
    recent: Mapping[str, tuple[datetime, str]], now: datetime, config: CrowdConfig
) -> list[tuple[datetime, str]]:
    """(last report, community) of each reporter within the horizon up to `now`, newest first."""
    members = sorted(recent.values(), reverse=True)
    edge, start, end = now - config.horizon, 0, len(members)
    while start < end and members[start][0] > now:
        start += 1
    while end > start and members[end - 1][0] <= edge:
        end -= 1
    return members[start:end] if start or end < len(members) else members


def _counted(by_community: Mapping[str, int], total: int, config: CrowdConfig) -> int:
    """Reporters, each community counting for at most `dominance` x all the others + slack:
    one server's raid adds little on top of what the rest of the crowd says."""
    share, slack = config.dominance, config.dominance_slack
    excess = sum(max(0.0, n - slack - share * (total - n)) for n in by_community.values())
    return math.floor(total - excess + 1e-9)


def _window_stats(
    members: Sequence[tuple[datetime, str]], now: datetime, config: CrowdConfig, rates: _Rates
) -> tuple[WindowStat, ...]:
    tests = len(config.windows)
    stats: list[WindowStat] = []
    times = [at for at, _community in members]
    communities = [community for _at, community in members]
    index, size = 0, len(members)
    for window in sorted(config.windows):
        edge = now - window
        while index < size and times[index] > edge:
            index += 1
        by_community = Counter(communities[:index])
        largest = max(by_community.values(), default=0)
        capped = largest > config.dominance_slack + config.dominance * (index - largest)
        counted = _counted(by_community, index, config) if capped else index
        expected = rates.expected(now, window)
        surprise = surprise_of(counted, expected, tests) if counted > expected else 0.0
        span = members[0][0] - members[index - 1][0] if index else timedelta(0)
        stats.append(
            WindowStat(window, index, len(by_community), counted, expected, surprise, span)
        )
    return tuple(stats)


def _cusum_fires(
    members: Sequence[tuple[datetime, str]], now: datetime, config: CrowdConfig, rates: _Rates
) -> bool:
    rule = config.rules[0]
    score = cusum_score(
        members,
        now,
        usual_per_hour=rates.at(now),
        floor_per_hour=rates.floor,
        factor=config.cusum_factor,
        lookback=config.cusum_lookback,
        threshold=config.cusum_threshold,
        min_span=config.cusum_min_span,
        min_reporters=rule.min_reporters,
        min_communities=rule.min_communities,
        dominance=config.dominance,
        dominance_slack=config.dominance_slack,
    )
    return score >= 0


def _enter_level(
    stats: Sequence[WindowStat], probe: ProbeSignal, config: CrowdConfig
) -> CrowdLevel:
    best = CrowdLevel.NONE
    for level, rule in zip(LEVELS[1:], config.rules, strict=True):
        surprise, reporters = rule.enter_surprise, rule.min_reporters
        communities = rule.min_communities
        if probe.strengthens:  # a failing probe lowers the bar (our own network failing: no)
            surprise = max(rule.leave_surprise, surprise - config.probe_surprise_bonus)
            reporters = max(3, math.ceil(reporters * config.probe_reporters_factor))
            communities = max(2, communities - 1)
        if any(
            s.surprise >= surprise
            and s.reporters >= reporters
            and s.communities >= communities
            and s.counted >= rule.min_ratio * s.expected
            and s.span >= config.min_span
            for s in stats
        ):
            best = level
    return best


def _onset(members: Sequence[tuple[datetime, str]], now: datetime, rates: _Rates) -> datetime:
    """The start of the surge: the look-back start whose count is the most surprising."""
    per_second = rates.at(now) / 3600.0
    best, started = 0.0, now
    for count, (at, _community) in enumerate(members, start=1):
        log_p = poisson_log_sf(count, per_second * max((now - at).total_seconds(), 30.0))
        if log_p <= best:
            best, started = log_p, at
    return started


def window_facts(
    memory: CrowdMemory,
    *,
    now: datetime,
    window: timedelta,
    config: CrowdConfig,
    probe: ProbeSignal = ProbeSignal(),
    stat: WindowStat | None = None,  # `evaluate` passes the window it has just counted
) -> CrowdFacts:
    """Reports, reporters, communities and ratio over the last `window` (at most the horizon),
    e.g. for a /report reply ("you and 37 others in the last 30 min, 9x the usual")."""
    now, window = _utc(now), min(window, config.horizon)
    edge = now - window
    if stat is None or stat.window != window:
        inside = [community for at, community in memory.recent.values() if edge < at <= now]
        stat = WindowStat(window, len(inside), len(set(inside)), 0, 0.0, 0.0, timedelta(0))
    half = edge - timedelta(seconds=30)  # minutes count when they are mostly inside the window
    reports = sum(n for minute, n in memory.raw.items() if half <= minute <= now)
    expected = _Rates.of(memory, config).expected(now, window)
    history = memory.learned_hours >= config.min_history_hours
    return CrowdFacts(
        level=memory.level,
        reports=max(reports, stat.reporters),
        reporters=stat.reporters,
        communities=stat.communities,
        ratio=round(stat.reporters / expected, 2) if history else None,
        first_report_at=memory.surge_started,
        probe_failing=probe.strengthens,
        window_minutes=round(window / timedelta(minutes=1)),
        expected=round(expected, 3),
    )


def evaluate(
    memory: CrowdMemory,
    *,
    now: datetime,
    config: CrowdConfig,
    probe: ProbeSignal = ProbeSignal(),
) -> tuple[CrowdMemory, CrowdAssessment]:
    """Decide the level at `now`, with hysteresis; returns the new memory and the assessment.

    Up: to the highest level whose entry conditions hold (once they have held for `sustain`).
    Down: only when the current level's leave threshold is no longer met and the level has held
    for `min_hold`; then to the highest level whose leave threshold is still met."""
    now = _utc(now)
    memory = _roll_hours(memory, now, config)
    recent, raw, latest = _forget(memory, now, config)
    rates = _Rates.of(memory, config)
    members = _members(recent, now, config)
    stats = _window_stats(members, now, config, rates)
    surprise = max((s.surprise for s in stats), default=0.0)
    enter = _enter_level(stats, probe, config)
    if enter is CrowdLevel.NONE and _cusum_fires(members, now, config, rates):
        enter = CrowdLevel.POSSIBLE
    if memory.learned_hours < config.min_history_hours:
        enter = CrowdLevel.NONE  # no idea yet what "usual" is
    stay = LEVELS[sum(1 for rule in config.rules if surprise >= rule.leave_surprise)]
    previous = memory.level
    level, since, pending, started = previous, memory.level_since, None, memory.surge_started
    if enter.rank > previous.rank:
        pending = memory.pending_since or now
        if now - pending >= config.sustain:
            level, since, pending = enter, now, None
            if previous is CrowdLevel.NONE:
                started = _onset(members, now, rates)
    elif stay.rank < previous.rank and (since is None or now - since >= config.min_hold):
        level, since = LEVELS[max(stay.rank, enter.rank)], now
        started = None if level is CrowdLevel.NONE else started
    memory = replace(
        memory,
        recent=recent,
        raw=raw,
        latest=latest,
        level=level,
        level_since=since,
        pending_since=pending,
        surge_started=started,
        hour_flagged=memory.hour_flagged or level is not CrowdLevel.NONE,
    )
    at_hand = next((s for s in stats if s.window == config.facts_window), None)
    facts = window_facts(
        memory, now=now, window=config.facts_window, config=config, probe=probe, stat=at_hand
    )
    return memory, CrowdAssessment(level, previous, facts, round(surprise, 3), enter, stay, stats)
