"""Log output: JSON lines that parse, text lines, and no token ever written in either."""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logsetup import MASK, build_handler, configure_logging
from bot.settings import Settings

SLACK_BOT = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP = "xapp-1-A0123456789-1234567890-abcdef0123456789"
DISCORD = "MTAxMjM0NTY3ODkwMTIzNDU2.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"  # a Slack signing secret has no telltale prefix
ADMIN = "operator-admin-token-42-0123456789"
WEBHOOK = "whsec_UbUoeDWw2W-_Os42YRGYUVaLp6IGeA0y0zlD9P-dRC4"


def settings(**extra: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token=SLACK_BOT,
        slack_app_token=SLACK_APP,
        slack_signing_secret=SIGNING,
        api_admin_token=ADMIN,
        **extra,
    )


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def log_through(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.logging.{fmt}")
    logger.handlers = [build_handler(settings(log_format=fmt), stream)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_json_lines_parse_with_every_field() -> None:
    logger, stream = log_through("json")
    logger.info("polled %s in %d ms", "openai", 42, extra={"service": "openai", "attempt": 3})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("delivery %s failed", 7)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "polled openai in 42 ms"
    assert (first["level"], first["logger"]) == ("INFO", "tests.logging.json")
    assert first["ts"].endswith("+00:00")
    assert "T" in first["ts"]
    assert (first["service"], first["attempt"]) == ("openai", 3)
    assert "exc_info" not in first
    assert second["level"] == "ERROR"
    assert isinstance(second["exc_info"], str)
    assert "RuntimeError: boom" in second["exc_info"]
    assert "Traceback" in second["exc_info"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_tokens_and_configured_secrets_are_redacted(fmt: str) -> None:
    logger, stream = log_through(fmt)
    logger.warning("slack said no to %s", SLACK_BOT)
    logger.warning("socket mode with %s failed", SLACK_APP)
    logger.warning("discord login %s", DISCORD)
    logger.warning("header was Authorization: Bearer abc.def-ghi_jkl~12345")
    logger.warning("signing secret %s, admin %s", SIGNING, ADMIN, extra={"token": SLACK_BOT})
    logger.info("webhook reply: %s", WEBHOOK)
    try:
        raise ValueError(f"bad token {DISCORD}")
    except ValueError:
        logger.exception("login failed")
    out = stream.getvalue()
    for secret in (SLACK_BOT, SLACK_APP, DISCORD, SIGNING, ADMIN, WEBHOOK, "abc.def-ghi_jkl~12345"):
        assert secret not in out
    assert out.count(MASK) >= (9 if fmt == "json" else 8)  # text shows no extra fields
    assert "slack said no to" in out
    assert "discord login" in out


def test_each_statuspage_webhook_secret_is_masked_on_its_own() -> None:
    first, second = "first-hook-secret-0123456789", "second-hook-secret-9876543210"
    stream = io.StringIO()
    logger = logging.getLogger("tests.logging.hooks")
    configured = settings(statuspage_webhook_secrets=f"openai:{first}, anthropic:{second}")
    logger.handlers, logger.propagate = [build_handler(configured, stream)], False
    logger.warning("POST /hooks/statuspage/%s from 10.0.0.1", second)
    logger.warning("and /hooks/statuspage/%s", first)
    out = stream.getvalue()
    assert first not in out
    assert second not in out
    assert out.count(MASK) == 2


def test_extra_fields_of_any_type_are_redacted_in_json() -> None:
    logger, stream = log_through("json")
    logger.warning("sent", extra={"request": {"token": SLACK_BOT}, "tries": 3, "ok": False})
    entry = json.loads(stream.getvalue())
    assert SLACK_BOT not in stream.getvalue()
    assert MASK in entry["request"]
    assert (entry["tries"], entry["ok"]) == (3, False)  # numbers and flags stay as they are


def test_ordinary_text_is_left_alone() -> None:
    logger, stream = log_through("text")
    logger.info("bearer of bad news: openai is down since 12:00")
    logger.info("service xoxo-fans has 3 reports")
    assert MASK not in stream.getvalue()


def test_configure_logging_applies_the_format_to_the_root(root_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(settings(log_format="json"), stream=stream)
    logging.getLogger("bot.somewhere").info("token %s leaked?", SLACK_BOT)
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == f"token {MASK} leaked?"
    assert entry["logger"] == "bot.somewhere"


def test_log_format_is_validated() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(_env_file=None, log_format="xml")  # type: ignore[call-arg, arg-type]


def test_driver_debug_lines_keep_the_sql_and_hide_the_values() -> None:
    stream = io.StringIO()
    driver = logging.getLogger("aiosqlite")
    saved = (driver.handlers[:], driver.propagate, driver.level)
    driver.handlers = [build_handler(settings(log_format="text"), stream)]
    driver.propagate, driver.level = False, logging.DEBUG
    try:
        call = functools.partial(
            print, "INSERT INTO webhook_targets (url, secret) VALUES (?, ?)", ("u", "a1b2c3d4e5f6")
        )
        driver.debug("executing %s", call)
    finally:
        driver.handlers, driver.propagate, driver.level = saved
    out = stream.getvalue()
    assert "INSERT INTO webhook_targets" in out
    assert "<values hidden>" in out
    assert "a1b2c3d4e5f6" not in out


FORGED = "Anthropic\r\nFAKE 2026-12-06 12:00:00,000 ERROR bot.runtime.leader: takeover\u2028again"
TITLE_ESCAPE = "\x1b]0;pwn\x07Degraded \x9b31m"


def test_text_log_keeps_status_page_text_on_one_inert_line(root_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(settings(log_format="text"), stream=stream)
    logging.getLogger("bot.sources").warning("page %s says %r", FORGED, TITLE_ESCAPE)
    try:
        raise ValueError(FORGED)
    except ValueError:
        logging.getLogger("bot.sources").exception("parse of %s failed", TITLE_ESCAPE)
    record_line, traceback_start, *traceback = stream.getvalue().splitlines()
    assert "page Anthropic\\r\\nFAKE 2026-12-06" in record_line
    assert "takeover\\u2028again says '\\x1b]0;pwn\\x07Degraded \\x9b31m'" in record_line
    assert "parse of \\x1b]0;pwn\\x07Degraded \\x9b31m failed" in traceback_start
    # The traceback's own lines are indented: only a record starts at the margin.
    assert all(line.startswith("  ") for line in traceback)
    assert "FAKE 2026" in traceback[-1]
    out = stream.getvalue()
    assert not any(char in out for char in "\r\x1b\x07\x9b\u2028")


def test_json_log_escapes_every_control_character() -> None:
    logger, stream = log_through("json")
    logger.warning("page %s says %s", FORGED, TITLE_ESCAPE)
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == f"page {FORGED} says {TITLE_ESCAPE}"
    assert not any(char in line for char in "\r\x1b\x07\x9b\u2028")
