"""Create the async engine and sessions; make SQLite behave (WAL, foreign keys, busy timeout)
and keep its files private (bot/store/file_modes.py).

On PostgreSQL a transaction that stages deliveries also sends ``NOTIFY outagebot_outbox`` when it
commits, so delivery workers in every process wake at once instead of at their next tick.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import UOWTransaction
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.orm.session import Session

from bot.store.file_modes import prepare_sqlite_path, tighten_sqlite_files
from bot.store.models import DeliveryRow
from bot.store.pg_driver import require_driver

OUTBOX_CHANNEL = "outagebot_outbox"
_STAGED = "outbox_staged"


def is_sqlite(url: str) -> bool:
    """Whether a database URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, sqlite_busy_seconds: float = 30.0) -> AsyncEngine:
    """An async engine for ``url``; creates the SQLite file's folder when needed.

    ``sqlite_busy_seconds``: how long a SQLite writer waits for another's lock before it fails
    with "database is locked"."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = None
        if parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database).expanduser()
            prepare_sqlite_path(database)
        engine = create_async_engine(url, connect_args={"timeout": sqlite_busy_seconds})
        pragmas = partial(
            _sqlite_pragmas, busy_ms=int(sqlite_busy_seconds * 1000), database=database
        )
        event.listen(engine.sync_engine, "connect", pragmas)
        return engine
    if parsed.get_driver_name() == "asyncpg":
        require_driver()  # one clear line instead of SQLAlchemy's ModuleNotFoundError
    # Enough connections for the outbox worker's concurrent channels plus polling and commands.
    return create_async_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)


def _sqlite_pragmas(
    dbapi_connection: Any, _record: Any, *, busy_ms: int, database: Path | None
) -> None:
    # WAL lets readers (commands) run while the poller writes; busy_timeout absorbs short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cursor.close()
    if database is not None:  # WAL mode is on now, so the -wal and -shm files exist
        tighten_sqlite_files(database)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (and announce new deliveries)."""
    return async_sessionmaker(
        engine, class_=AsyncSession, expire_on_commit=False, sync_session_class=NotifyingSession
    )


class NotifyingSession(Session):
    """A session that notifies delivery workers when a commit carries new outbox rows."""


@event.listens_for(NotifyingSession, "after_flush")
def _note_staged(session: Session, _flush: UOWTransaction) -> None:
    if _stages_deliveries(session):
        session.info[_STAGED] = True


@event.listens_for(NotifyingSession, "before_commit")
def _notify_staged(session: Session) -> None:
    # before_commit runs before the commit's own flush: rows still unflushed count too.
    if not (session.info.pop(_STAGED, False) or _stages_deliveries(session)):
        return
    connection = session.connection()
    # Inside the transaction: PostgreSQL delivers it on commit and drops it on rollback.
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))


def _stages_deliveries(session: Session) -> bool:
    return any(isinstance(row, DeliveryRow) for row in session.new)


@event.listens_for(NotifyingSession, "after_rollback")
def _forget_staged(session: Session) -> None:
    session.info.pop(_STAGED, None)
