"""Command line: ``outagebot run | console | check | services | db``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot import __version__
from bot.core.status import SourceKind
from bot.errors import ConfigError
from bot.logsetup import configure_logging
from bot.settings import Settings
from bot.sources.catalog import CatalogError

if TYPE_CHECKING:
    from bot.core.status import Snapshot

MAX_CHECK_FILE_BYTES = 50_000_000
KINDS = (SourceKind.STATUSPAGE, SourceKind.FEED, SourceKind.GCLOUD)
"""What `outagebot check --kind` reads (a probe is a live request, not a file)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``outagebot`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        print(f"outagebot: invalid configuration: {problems}", file=sys.stderr)
        return 2
    handlers: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "run": _run,
        "console": _console,
        "check": _check,
        "services": _services,
        "demo": _demo,
        "slack-manifest": _slack_manifest,
        "db": _db,
    }
    try:
        return handlers[args.command](args, settings)
    except KeyboardInterrupt:
        return 130
    except (ConfigError, CatalogError) as exc:
        print(f"outagebot: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outagebot", description="Outage support for chat communities."
    )
    parser.add_argument("--version", action="version", version=f"outagebot {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot: polling, web server, chat adapters (console on a TTY)")
    sub.add_parser("console", help="talk to the bot in this terminal (works with piped input)")
    check = sub.add_parser("check", help="read one status source and print what it says")
    check.add_argument("source", help="a URL or a file: Statuspage JSON, RSS/Atom, gcloud JSON")
    check.add_argument("--json", action="store_true", help="print the normalised snapshot as JSON")
    check.add_argument("--kind", choices=KINDS, default=None, help="source kind (default: detect)")
    check.add_argument("--product", help="gcloud: keep incidents of this product only")
    check.add_argument("--match", help="feed: keep entries that mention this text only")
    demo = sub.add_parser("demo", help="replay a real outage offline and watch the alerts")
    demo.add_argument(
        "--speed", type=float, default=150.0, help="how much faster than real time (default 150)"
    )
    sub.add_parser("slack-manifest", help="print a Slack app manifest (JSON) for these settings")
    services = sub.add_parser("services", help="list the tracked services and their sources")
    services.add_argument("--json", action="store_true", help="print the catalog as JSON")
    db = sub.add_parser("db", help="database schema")
    db.add_argument(
        "action", choices=["upgrade", "current"], help="apply migrations, or show the revision"
    )
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import run

    console = settings.console == "on" or (settings.console == "auto" and sys.stdin.isatty())
    configure_logging(settings, quiet=console)
    return asyncio.run(run(settings, console=console))


def _console(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import run

    configure_logging(settings, quiet=True)
    return asyncio.run(run(settings, console=True))


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.sources.check import CheckFailed, read_source, render_summary
    from bot.sources.snapshot_json import snapshot_to_json

    configure_logging(settings, quiet=True)
    source: str = args.source
    options = {k: v for k, v in (("product", args.product), ("match", args.match)) if v}
    try:
        snapshot = asyncio.run(
            read_source(
                source,
                settings=settings,
                max_file_bytes=MAX_CHECK_FILE_BYTES,
                kind=args.kind,
                options=options,
            )
        )
    except CheckFailed as exc:
        print(f"outagebot check: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps(_unknown_json(args.kind or SourceKind.STATUSPAGE)))
        return 2
    if args.json:
        print(json.dumps(snapshot_to_json(snapshot), ensure_ascii=False, indent=2))
    else:
        print(render_summary(snapshot, origin=source if "://" in source else Path(source).name))
    # On stderr: stdout stays the summary, or exactly the --json contract.
    for line in _stale_catalog_lines(settings, snapshot, source):
        print(f"outagebot check: {line}", file=sys.stderr)
    return 0


def _stale_catalog_lines(settings: Settings, snapshot: Snapshot, source: str) -> list[str]:
    """Warnings for catalog services of this page whose component names it does not list."""
    from bot.sources.catalog import load_catalog
    from bot.sources.catalog_drift import services_of_page, stale_warnings

    try:
        catalog = load_catalog(settings.catalog_path)
    except (CatalogError, OSError):
        return []  # `check` reads a source; a broken catalog is `services`' to report
    url = source if "://" in source else None
    return stale_warnings(snapshot, services_of_page(catalog, snapshot, url))


def _unknown_json(kind: str) -> dict[str, object]:
    return {
        "kind": kind,
        "page": {"name": None, "url": None},
        "indicator": "unknown",
        "components": [],
        "incidents": [],
        "maintenances": [],
    }


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo.replay import main_demo

    if not 1 <= args.speed <= 100_000:
        print("outagebot demo: --speed must be between 1 and 100000", file=sys.stderr)
        return 2
    configure_logging(settings, quiet=True)
    return main_demo(args.speed)


def _slack_manifest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.adapters.slack.manifest import build_manifest

    print(json.dumps(build_manifest(settings), indent=2, ensure_ascii=False))
    return 0


def _services(args: argparse.Namespace, settings: Settings) -> int:
    from bot.sources.catalog import load_catalog, service_to_json
    from bot.sources.catalog_drift import stored_page_warnings

    catalog = load_catalog(settings.catalog_path)
    stale = stored_page_warnings(settings, catalog)
    if args.json:
        print(json.dumps([service_to_json(s) for s in catalog], indent=2, ensure_ascii=False))
        for lines in stale.values():
            print("\n".join(f"outagebot services: {line}" for line in lines), file=sys.stderr)
        return 0
    for service in catalog:
        aliases = f" (also: {', '.join(service.aliases)})" if service.aliases else ""
        print(f"{service.id}: {service.name}, {service.provider}{aliases}")
        print(f"    capabilities: {', '.join(service.capabilities) or '-'}")
        for source in service.sources:
            print(f"    {source.kind}: {source.url}")
        for line in stale.get(service.id, []):
            print(f"    ! {line}")
    print(f"{len(catalog)} services")
    return 0


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store import migrate
    from bot.store.engine import create_engine

    configure_logging(settings, quiet=True)

    async def act() -> str:
        engine = create_engine(settings.database_url)
        try:
            if args.action == "upgrade":
                await migrate.upgrade(engine)
            current = await migrate.current_revision(engine)
            return f"database at revision {current} (head: {migrate.head_revision()})"
        finally:
            await engine.dispose()

    print(asyncio.run(act()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
