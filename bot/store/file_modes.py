"""Keep a SQLite database private: it holds Slack bot tokens, webhook secrets, the user-hash salt.

The folder is made 0700 and the database with its ``-wal`` and ``-shm`` files 0600. SQLite
gives the files it creates later (the WAL, the shared-memory index) the database file's own
mode, so the database file is created 0600 before SQLite first opens it, and every new
connection tightens the three files again in case one came from elsewhere (a restored backup).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SUFFIXES = ("", "-wal", "-shm")


def prepare_sqlite_path(database: Path) -> None:
    """Create the database's folder and file privately, and tighten ones that are not."""
    folder = database.parent
    if not folder.exists():
        folder.mkdir(mode=FOLDER_MODE, parents=True)
    else:
        _tighten_folder(folder)
    if not database.exists():
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    tighten_sqlite_files(database, announce=True)


def tighten_sqlite_files(database: Path, *, announce: bool = False) -> None:
    """Make the database and its WAL and shared-memory files readable by their owner only."""
    for suffix in SQLITE_SUFFIXES:
        path = database.with_name(database.name + suffix)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & ~FILE_MODE:
                path.chmod(FILE_MODE)
                if announce:
                    log.warning("%s was mode 0%o, now 0%o: it holds secrets", path, mode, FILE_MODE)
        except FileNotFoundError:
            continue  # the WAL and its index exist only while the database is open
        except OSError as exc:
            log.warning("could not make %s private: %s", path, exc)


def _tighten_folder(folder: Path) -> None:
    info = folder.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & ~FOLDER_MODE:
        return
    resolved = folder.resolve()
    # A folder shared with others (the working directory, a home, /tmp) is not ours to close.
    shared = (
        info.st_mode & stat.S_ISVTX
        or info.st_uid != os.getuid()
        or resolved in (Path.cwd().resolve(), Path.home().resolve())
    )
    if shared:  # the files themselves are private: say so once, quietly
        log.info(
            "%s is mode 0%o and shared: keep the database in a folder of its own (mode 0%o)",
            folder,
            mode,
            FOLDER_MODE,
        )
        return
    try:
        folder.chmod(FOLDER_MODE)
    except OSError as exc:
        log.warning("could not make %s private: %s", folder, exc)
        return
    log.warning("%s was mode 0%o, now 0%o: it holds secrets", folder, mode, FOLDER_MODE)
