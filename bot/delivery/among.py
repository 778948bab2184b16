"""``column IN (a round's values)``, written so that its cost does not grow with the round.

SQLAlchemy renders an IN list as one bound parameter per value, anew at every execution (the
compiled statement is cached, the expanded one is not): about 5 µs per value on PostgreSQL,
where a round's lists hold a wave's 200 deliveries, 5 to 6 lists a wave. PostgreSQL takes the
whole list as one array parameter instead (``= ANY(:values)``). SQLite has no arrays, and its
alternative (``IN (SELECT value FROM json_each(:values))``) measured no cheaper, so it keeps IN.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel.ext.asyncio.session import AsyncSession


def among(
    session: AsyncSession, column: Any, values: Collection[int] | Collection[str]
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (integers or strings, as the column holds)."""
    listed = list(values)
    if session.get_bind().dialect.name != "postgresql":
        # One expanding parameter rather than the values themselves: saves coercing each value
        # into a literal of its own while the statement is built.
        return column.in_(bindparam(None, listed, expanding=True))  # type: ignore[no-any-return]
    element = String() if listed and isinstance(listed[0], str) else Integer()
    return column == any_(bindparam(None, listed, type_=ARRAY(element)))  # type: ignore[no-any-return]
