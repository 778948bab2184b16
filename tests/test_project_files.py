"""The files around the code say what the code and the packaging say."""

from __future__ import annotations

import re
import tomllib

from bot.sources.catalog import load_catalog
from tests.conftest import REPO

# The first line of each license text pyproject may name (SPDX id -> heading of the text).
LICENSE_HEADINGS = {"MIT": "MIT License"}


def test_license_file_matches_pyproject() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    text = (REPO / "LICENSE").read_text()
    assert text.splitlines()[0] == LICENSE_HEADINGS[declared]
    assert "Copyright (c) 2026 the outagebot authors" in text


def test_readme_counts_the_builtin_catalog_as_the_startup_line_does() -> None:
    """Services and the sources they are read from, the two counts the console's startup line
    ("Checking 29 sources of 31 services…") gives: a page can serve several services."""
    readme = " ".join((REPO / "README.md").read_text().split())
    stated = re.search(r"built-in catalog \((\d+) services, read from (\d+) sources", readme)
    assert stated is not None, "README no longer states the catalog's size"
    catalog = load_catalog(None)
    assert (int(stated[1]), int(stated[2])) == (len(catalog), len(catalog.source_urls()))
