"""``column IN (a round's values)``, written so that its cost does not grow with the round.

SQLAlchemy turns an IN list of values into one literal parameter each while it builds the
statement, anew at every execution; a wave's lists hold up to 500 deliveries' values, a few lists
a wave. One expanding parameter holding the whole list skips that per-value work.

PostgreSQL could take the list as one array (``= ANY(:values)``), cheaper still on our side, but
its plan for an array of unknown length was far worse: `bench/scale.py` fell from 829 to 297
deliveries/s with one process on 5,000 channels (2026-12-07), the time spent in the server.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, bindparam


def among(column: Any, values: Collection[int] | Collection[str]) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (integers or strings, as the column holds)."""
    return column.in_(bindparam(None, list(values), expanding=True))  # type: ignore[no-any-return]
