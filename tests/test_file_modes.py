"""The SQLite database holds Slack bot tokens, webhook secrets and the user-hash salt: only its
owner may read it, its WAL and shared-memory files, or list its folder."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import open_app
from bot.settings import Settings
from bot.store.models import ServiceRow


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most hosts run with (files 0644, folders 0755)."""
    saved = os.umask(0o022)
    yield
    os.umask(saved)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def start_and_write(database: Path) -> dict[str, int]:
    """Start the app on the database, store something, and read the modes while it is open."""
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{database}")  # type: ignore[call-arg]
    async with open_app(settings) as app, app.deps.sessions() as session:
        row = (await session.exec(select(ServiceRow))).first()
        assert row is not None
        row.name = "renamed"
        session.add(row)
        await session.commit()
        return {
            name: mode(database.with_name(name))
            for name in (database.name, f"{database.name}-wal", f"{database.name}-shm")
        }


async def test_a_new_database_is_private(tmp_path: Path) -> None:
    database = tmp_path / "data" / "outagebot.db"

    files = await start_and_write(database)

    assert mode(database.parent) == 0o700
    assert files == {"outagebot.db": 0o600, "outagebot.db-wal": 0o600, "outagebot.db-shm": 0o600}


async def test_an_existing_readable_database_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "data" / "outagebot.db"
    await start_and_write(database)
    database.parent.chmod(0o755)
    for name in ("outagebot.db", "outagebot.db-wal", "outagebot.db-shm"):
        if database.with_name(name).exists():
            database.with_name(name).chmod(0o644)
    caplog.set_level(logging.WARNING, logger="bot.store.file_modes")

    files = await start_and_write(database)

    assert mode(database.parent) == 0o700
    assert set(files.values()) == {0o600}
    said = caplog.text
    assert f"{database.parent} was mode 0755, now 0700" in said
    assert f"{database} was mode 0644, now 0600" in said


async def test_a_shared_folder_is_left_open_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database next to other files (the working directory) gets private files; the folder
    is not ours to close."""
    tmp_path.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO, logger="bot.store.file_modes")

    files = await start_and_write(tmp_path / "outagebot.db")

    assert mode(tmp_path) == 0o755
    assert set(files.values()) == {0o600}
    assert "shared: keep the database in a folder of its own" in caplog.text
