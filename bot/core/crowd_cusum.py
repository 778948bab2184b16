"""The crowd detector's CUSUM path (pure): a fast second way into "possible outage".

The window rules test fixed windows one by one; a CUSUM test asks, for every start within a
look-back, whether the reports since then are likelier under k x the usual rate than under the
usual rate. That is the optimal test for a surge of size k (docs/crowd.md compares both with an
oracle that knows everything). It keeps no state: the score is recomputed from the reporters
`evaluate` already holds, so nothing new has to be stored or survive a restart.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta


def cusum_score(
    members: Sequence[tuple[datetime, str]],
    now: datetime,
    *,
    usual_per_hour: float,
    floor_per_hour: float,
    factor: float,
    lookback: timedelta,
    threshold: float,
    min_span: timedelta,
    min_reporters: int,
    min_communities: int,
    dominance: float,
    dominance_slack: int,
) -> float:
    """Best score over look-back starts; the path fires when it is >= 0.

    ``members`` are (time, community) of counted reporters, newest first. For each start within
    ``lookback`` whose reports span at least ``min_span`` and come from enough reporters and
    communities: counted reporters x ln k - (k - 1) x the usual count since that start - h,
    where communities beyond their share are capped as in the windows and
    h = threshold + ln(usual / floor). -inf when off (k <= 1) or nothing qualifies.
    """
    if factor <= 1 or not members:
        return -math.inf
    gain, drift = math.log(factor), (factor - 1.0) * usual_per_hour / 3600.0
    h = threshold + math.log(usual_per_hour / floor_per_hour)
    edge, newest = now - lookback, members[0][0]
    by_community: Counter[str] = Counter()
    crowded: set[str] = set()  # communities with more than the slack (they may be capped)
    best = -math.inf
    for total, (at, community) in enumerate(members, start=1):
        if at <= edge:
            break
        n = by_community[community] = by_community[community] + 1
        if n > dominance_slack:
            crowded.add(community)
        if total < min_reporters or len(by_community) < min_communities:
            continue
        if newest - at < min_span:
            continue
        excess = sum(
            max(0.0, by_community[c] - dominance_slack - dominance * (total - by_community[c]))
            for c in crowded
        )
        counted = math.floor(total - excess + 1e-9)
        best = max(best, counted * gain - drift * (now - at).total_seconds() - h)
    return best
