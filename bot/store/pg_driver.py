"""asyncpg, PostgreSQL's driver, when installed: it is the ``postgres`` extra.

A SQLite install runs without it, so nothing imports asyncpg directly: modules that talk to
PostgreSQL take the driver and its error classes from here. Without asyncpg the error tuples are
empty (no PostgreSQL connection can exist to raise them) and `require_driver` says what to install.
"""

from __future__ import annotations

from typing import Any

from bot.errors import ConfigError

INSTALL_HINT = "pip install 'outagebot[postgres]'"

try:
    import asyncpg as _asyncpg  # type: ignore[import-untyped]  # ships no type hints
except ImportError:  # a SQLite-only install
    _asyncpg = None

driver: Any = _asyncpg
"""The asyncpg module, or None when the ``postgres`` extra is not installed."""

_Errors = tuple[type[BaseException], ...]

CONNECTION_ERRORS: _Errors = (driver.PostgresError, driver.InterfaceError) if driver else ()
"""Anything asyncpg raises on a dedicated connection: a server error, or a connection gone."""

SERVER_AWAY_ERRORS: _Errors = (
    (
        driver.PostgresConnectionError,  # class 08, including "connection was closed mid-operation"
        driver.CannotConnectNowError,  # the server is starting up or shutting down
        driver.AdminShutdownError,
        driver.CrashShutdownError,
        driver.InsufficientResourcesError,  # disk full, out of memory, too many connections
    )
    if driver
    else ()
)
"""The server cannot serve right now (rather than a query that is wrong)."""

INTERFACE_ERRORS: _Errors = (driver.InterfaceError,) if driver else ()
"""Client-side errors, among them using a connection the server already dropped."""


def require_driver() -> Any:
    """The asyncpg module; a one-line `ConfigError` naming the extra when it is missing."""
    if driver is None:
        raise ConfigError(
            f"DATABASE_URL names PostgreSQL, but its driver is not installed: {INSTALL_HINT}"
        )
    return driver
