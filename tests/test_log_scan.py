"""The whole-suite log scan (tests/log_scan.py) is installed, flags leaks and passes redacted lines.

The scanner judges what the product would write: a token the product masks is no finding, a
secret it would write as is (a shape it does not know, a value it was not configured with, a
field it does not redact) is one, shown masked.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.conftest import REPO
from tests.log_scan import (
    KNOWN_SECRETS,
    PLUGIN_NAME,
    LogScan,
    find_secrets,
    preview,
    scan,
)

SLACK_BOT = "xoxb-2401234567-5012345678901-AbCdEfGhIjKlMnOpQrStUvWx"
DISCORD = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"
SIGNING = KNOWN_SECRETS[0]


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "bot.test", "levelname": "WARNING", "msg": msg})
    made.args = args
    made.__dict__.update(extra)
    return made


def test_a_token_the_product_masks_is_no_finding() -> None:
    line = record("slack %s, discord %s", SLACK_BOT, DISCORD, token=SLACK_BOT)
    line.exc_text = f"RuntimeError: Authorization: Bearer {SLACK_BOT}"
    assert scan(line) == []
    assert line.args == (SLACK_BOT, DISCORD)  # the record itself is left for other handlers


def test_a_configured_secret_is_masked_and_an_unconfigured_one_is_a_finding() -> None:
    assert scan(record("signing secret %s", SIGNING), configured=[SIGNING]) == []
    [finding] = scan(record("signing secret %s", SIGNING))
    assert (finding.logger, finding.kind) == ("bot.test", "known test secret")
    assert str(finding) == "WARNING bot.test: known test secret: 8f14e4… (32 characters)"
    assert SIGNING not in str(finding)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("team token xoxb-T1-2345", "slack"),  # shorter than bot.logsetup's shapes
        ("refresh token xoxe-1-My0xLTEtMjI", "slack"),
        ("feed https://ops:hunter22@status.example.com/feed", "url_password"),
        ("GET /api?access_token=abcd1234efgh", "query"),
        ("header Authorization: Basic b3BzOmh1bnRlcjI=", "authorization"),
        ("outgoing webhook signed with whsec_abc123", "signing"),
    ],
)
def test_shapes_the_product_does_not_mask_are_findings(text: str, kind: str) -> None:
    assert [f.kind for f in scan(record(text))] == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "bearer of bad news: openai is down since 12:00",
        "service xoxo-fans has 3 reports",
        'raise ConnectionError(f"POST https://x.example/?token={SLACK_BOT}")',  # source lines
        "Authorization: Bearer [redacted]",
        "database postgresql+asyncpg://postgres:***@127.0.0.1:5432/test",
        "GET /api/v1/incidents?service=openai-api&limit=20",
    ],
)
def test_ordinary_and_redacted_text_is_no_finding(text: str) -> None:
    assert find_secrets(text) == []


def test_a_field_of_any_type_goes_through_the_products_redaction() -> None:
    """Extra fields that are not strings reach the JSON line as their repr: the product
    redacts that text too (it once skipped them, and this scan is how that was found)."""
    assert scan(record("sent", headers={"Authorization": f"Bot {DISCORD}"})) == []
    [finding] = scan(record("sent", headers={"Authorization": "Bot short.x"}))
    assert finding.kind == "authorization"  # what the product does not mask is still caught


def test_the_scanner_sees_every_record_of_this_run(request: pytest.FixtureRequest) -> None:
    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    assert isinstance(plugin, LogScan)
    assert plugin.handler in logging.getLogger().handlers
    before = plugin.handler.records
    logging.getLogger("bot.somewhere.deep").debug("polled %s", "openai-api")
    logging.getLogger("slack_sdk.web").debug("sending a request")
    assert plugin.handler.records == before + 2
    # The secrets of the settings this test builds are masked, as `outagebot run` would.
    Settings(_env_file=None, slack_signing_secret=SIGNING)  # type: ignore[call-arg]
    assert SIGNING in plugin.configured
    assert plugin.handler.redaction.redact(SIGNING) == "[redacted]"


INNER = f'''
import logging

from bot.settings import Settings

logging.getLogger("bot.importing").warning("loaded with {KNOWN_SECRETS[1]}")


def test_leaks():
    logging.getLogger("bot.leaky").warning("signing with %s", "{SIGNING}")


def test_masked_token_passes():
    logging.getLogger("bot.fine").debug("token %s", "{SLACK_BOT}")


def test_configured_secret_passes():
    Settings(_env_file=None, slack_signing_secret="{SIGNING}")
    logging.getLogger("bot.fine").warning("signing with %s", "{SIGNING}")
'''


def test_a_leaking_test_fails_by_name_and_never_shows_the_secret(tmp_path: Path) -> None:
    """A real pytest run with the plugin: the leaking test fails, the others pass."""
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.log_scan", "-p", "no:cacheprovider"),
            *("-q", "--rootdir", str(tmp_path), "test_inner.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert "1 failed, 2 passed" in out, out
    assert "during call of test_inner.py::test_leaks" in out, out
    assert "WARNING bot.leaky: known test secret: 8f14e4… (32 characters)" in out, out
    assert "outside any test" in out, out
    assert f"WARNING bot.importing: known test secret: {preview(KNOWN_SECRETS[1])}" in out, out
    assert "Captured log call" in out  # pytest's own capture of the line, scrubbed
    for secret in (SIGNING, KNOWN_SECRETS[1]):
        assert secret not in out, out
