"""The command line: `check` (the contract other work relies on), `db`, configuration errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import migrate
from tests.conftest import FIXTURES
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer, Step

STATUSPAGE = FIXTURES / "statuspage"
EXPECTED = sorted((STATUSPAGE / "expected").glob("*.check.json"))


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings read ./.env; run every CLI call from an empty folder with a private database.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")


def test_there_are_expected_files() -> None:
    assert len(EXPECTED) >= 5


@pytest.mark.parametrize(
    "expected_path", EXPECTED, ids=lambda p: p.name.removesuffix(".check.json")
)
def test_check_json_matches_the_contract(
    expected_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = STATUSPAGE / expected_path.name.replace(".check.json", ".json")
    assert main(["check", "--json", str(payload)]) == 0
    got = json.loads(capsys.readouterr().out)
    expected = json.loads(expected_path.read_text())
    assert got["kind"] == "statuspage"
    assert set(got) == {"kind", "page", "indicator", "components", "incidents", "maintenances"}
    assert set(got["page"]) == {"name", "url"}
    assert got["indicator"] == expected["indicator"]
    assert [
        {k: c[k] for k in ("id", "name", "status", "group")} for c in got["components"]
    ] == expected["components"]
    for got_incident, want in zip(got["incidents"], expected["incidents"], strict=True):
        for key in ("id", "name", "status", "impact", "started_at", "resolved_at"):
            assert got_incident[key] == want[key], key
        assert "url" in got_incident
        assert [
            {"status": u["status"], "created_at": u["created_at"]} for u in got_incident["updates"]
        ] == want["updates"]
        assert all(isinstance(u["body"], str) for u in got_incident["updates"])
    fields = ("id", "name", "status", "scheduled_for", "scheduled_until")
    assert [{k: m[k] for k in fields} for m in got["maintenances"]] == expected["maintenances"]


def test_check_without_json_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    path = STATUSPAGE / "statuspage_summary_github_2022-11-25_incident.json"
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GitHub (statuspage)")
    assert "Incident with Packages and Pages [major, investigating]" in out


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<html>nope</html>", "not an RSS/Atom feed"),
        (b'{"page": ', "not a Statuspage payload"),
        (None, "cannot open"),
    ],
)
def test_check_failure_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, reason: str
) -> None:
    path = tmp_path / "payload.json"
    if content is not None:
        path.write_bytes(content)
    assert main(["check", "--json", str(path)]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["indicator"] == "unknown"
    assert reason in captured.err
    assert captured.err.count("\n") == 1


async def run_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{cwd / 'cli.db'}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_check_reads_a_url(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        server.set_json(
            SUMMARY_PATH,
            json.loads((STATUSPAGE / "statuspage_summary_iterable_2017-08-22.json").read_text()),
        )
        server.set_script("/broken", [Step(status=502)])
        code, out, _ = await run_cli("check", "--json", server.url(SUMMARY_PATH), cwd=tmp_path)
        assert code == 0
        assert json.loads(out)["page"]["name"] == "Iterable"
        code, _, err = await run_cli("check", server.url("/broken"), cwd=tmp_path)
        assert code == 2
        assert "HTTP 502" in err


def test_db_upgrade_then_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == lines[1]
    head = migrate.head_revision()
    assert lines[0] == f"database at revision {head} (head: {head})"


def test_invalid_setting_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "soon")
    assert main(["db", "current"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err
    assert "POLL_INTERVAL_SECONDS" in err
    assert "Traceback" not in err


FEEDS = FIXTURES / "feeds"
GCLOUD = sorted((FIXTURES / "gcloud").glob("*.json"))


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (FEEDS / "statuspage_github_2026-02-04-history.atom.xml", "feed"),
        (FEEDS / "statuspage_history.rss_parse.com_2014-01-09.xml", "feed"),
        (GCLOUD[0], "gcloud"),
        (STATUSPAGE / "statuspage_summary_iterable_2017-08-22.json", "statuspage"),
    ],
    ids=["atom", "rss", "gcloud", "statuspage"],
)
def test_check_detects_every_kind(
    path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--json", str(path)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["kind"] == kind
    assert set(got) == {"kind", "page", "indicator", "components", "incidents", "maintenances"}
    stamps = [i["started_at"] for i in got["incidents"] if i["started_at"]]
    assert all(s.endswith("Z") and len(s) == 20 for s in stamps)
    assert main(["check", "--json", "--kind", kind, str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == got


def test_check_with_the_wrong_kind_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    path = STATUSPAGE / "statuspage_summary_iterable_2017-08-22.json"
    assert main(["check", "--kind", "gcloud", str(path)]) == 2
    assert "not a Google Cloud incidents list" in capsys.readouterr().err


def test_services_lists_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["services", "--json"]) == 0
    services = json.loads(capsys.readouterr().out)
    assert len(services) >= 25
    by_id = {s["id"]: s for s in services}
    assert "claude" in by_id["anthropic-api"]["aliases"]
    assert {"kind", "url"} <= set(by_id["openai-api"]["sources"][0])
    assert all(s["sources"] for s in services)
    assert main(["services"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"{len(services)} services")


HEAD = '[[service]]\nid = "x"\nname = "x"\n[[service.source]]\n'


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[[service]]\nid = "Bad Id"\nname = "x"', "kebab-case"),
        ('[[service]]\nid = "x"\nname = "x"', "at least one"),
        (
            HEAD + 'kind = "probe"\nurl = "https://a/"\nexpect_status = "401"',
            "probe source",
        ),
        (
            HEAD + 'kind = "statuspage"\nurl = "https://a/s.json"\n'
            '[[service.source]]\nkind = "statuspage"\nurl = "https://b/s.json"',
            "at most one statuspage",
        ),
        (
            HEAD + 'kind = "feed"\nurl = "https://a/f"\nmatch = 3',
            "match must be",
        ),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_bad_catalog_is_a_clear_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    toml: str,
    problem: str,
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(toml)
    monkeypatch.setenv("CATALOG_PATH", str(path))
    assert main(["services"]) == 2
    err = capsys.readouterr().err
    assert problem in err
    assert "Traceback" not in err


def test_bad_webhook_secrets_stop_run_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STATUSPAGE_WEBHOOK_SECRETS", "slack:abcdefghijklmnopqrst")
    monkeypatch.setenv("CONSOLE", "off")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "'slack', which has no statuspage source" in err
    assert "abcdefghijklmnopqrst" not in err  # never echo a secret


def test_slack_manifest_reflects_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_COMMAND", "/ai-status")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-test")
    assert main(["slack-manifest"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["features"]["slash_commands"][0]["command"] == "/ai-status"
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "chat:write" in manifest["oauth_config"]["scopes"]["bot"]
