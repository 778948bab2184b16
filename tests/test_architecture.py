"""House rules that keep the core platform-neutral."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PLATFORM_LIBRARIES = {"discord", "slack_bolt", "slack_sdk"}
IO_LIBRARIES = {
    "aiohttp",
    "sqlalchemy",
    "sqlmodel",
    "asyncpg",
    "aiosqlite",
    "apscheduler",
    "bot.store",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(*folders: str) -> list[Path]:
    files = [p for folder in folders for p in sorted((REPO / folder).rglob("*.py"))]
    assert files, f"no Python files under {folders}"
    return files


def offending(path: Path, banned: set[str]) -> list[str]:
    return sorted(
        m for m in imported_modules(path) if any(m == b or m.startswith(b + ".") for b in banned)
    )


@pytest.mark.parametrize(
    "path", python_files("cogs", "bot/core"), ids=lambda p: str(p.relative_to(REPO))
)
def test_cogs_and_core_never_import_chat_platforms(path: Path) -> None:
    assert offending(path, PLATFORM_LIBRARIES) == []


@pytest.mark.parametrize("path", python_files("bot/core"), ids=lambda p: str(p.relative_to(REPO)))
def test_core_does_no_io(path: Path) -> None:
    assert offending(path, IO_LIBRARIES) == []


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("import discord.ext.commands\nfrom slack_bolt.async_app import AsyncApp\n")
    assert offending(sneaky, PLATFORM_LIBRARIES) == ["discord.ext.commands", "slack_bolt.async_app"]


def test_no_module_is_too_long() -> None:
    long = [
        (str(p.relative_to(REPO)), n)
        for p in python_files("bot", "cogs")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    ]
    assert long == []


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (``test_*``) that ``path`` imports, absolutely or relatively."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names += [base] if base else []
            # ``from . import test_x`` names the module in the imported names
            names += [f"{base}.{alias.name}".strip(".") for alias in node.names if node.level]
    return sorted({n for n in names if n.rsplit(".", 1)[-1].startswith("test_")})


def test_no_test_module_imports_another() -> None:
    # Shared test code lives in tests/helpers.py, tests/fakes/ and bot.testing: a test file
    # imported by another runs its module-level fixtures twice and ties unrelated suites.
    importing = {
        str(p.relative_to(REPO)): found
        for p in sorted((REPO / "tests").rglob("test_*.py"))
        if (found := imported_test_modules(p))
    }
    assert importing == {}


def test_the_test_import_rule_catches_a_violation(tmp_path: Path) -> None:
    sneaky = tmp_path / "test_sneaky.py"
    sneaky.write_text(
        "from tests.test_alerts import TIMELINE\n"
        "import tests.test_run\n"
        "from . import test_web_api\n"
        "from tests.helpers import make_poller\n"
    )
    assert imported_test_modules(sneaky) == ["test_web_api", "tests.test_alerts", "tests.test_run"]
