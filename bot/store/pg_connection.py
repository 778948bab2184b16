"""Dedicated asyncpg connections, outside the SQLAlchemy pool.

Session-level advisory locks and LISTEN live exactly as long as their connection, so the leader
election and the outbox's wake-ups each hold a connection of their own instead of a pooled one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import make_url

from bot.store.pg_driver import require_driver

Connect = Callable[[], Awaitable[Any]]
"""Opens a dedicated asyncpg connection."""


def asyncpg_connector(database_url: str) -> Connect:
    """A `Connect` for the database of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    asyncpg = require_driver()

    async def connect() -> Any:
        return await asyncpg.connect(dsn)

    return connect
