"""pytest plugin: every log record of the whole test run is checked for secrets.

Each record is rendered the way `outagebot run` would write it: through the product's own
`RedactingFilter` (its token shapes, plus the secrets of every `Settings` the test built, as a
process configured with them would mask) and its JSON formatter (the widest format: extra
fields included). What survives is searched for anything token-shaped, with shapes wider than
the product's, and for the fake secrets the suite uses. A finding fails the test that logged
it, naming the logger and showing the secret masked; records logged outside any test fail the
session. The product's own loggers and its I/O libraries log at DEBUG during the run, so their
most talkative lines are scanned too.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.logsetup import MASK, JsonFormatter, RedactingFilter, settings_secrets
from bot.settings import Settings

# The product and the libraries that see its tokens, at DEBUG for the whole run. Not aiosqlite:
# its two DEBUG lines per database call, from its worker thread, doubled the suite's CPU time
# (the product hides their values, tests/test_log_secrets.py checks it); its INFO and up are
# scanned. Not SQLAlchemy: it sets itself to WARNING on import, so the product never writes it.
DEBUG_LOGGERS = ("bot", "cogs", "aiohttp", "discord", "slack_bolt", "slack_sdk")

_NOT_MASKED = r"(?!" + re.escape(MASK) + r")"
# Wider than bot.logsetup's shapes on purpose: a shorter or rarer token, a password in a URL or
# a credential in a query string is still a leak, even when the product has no mask for it.
SECRET_SHAPES = re.compile(
    r"(?P<slack>\bxox[abcdeprs]-[A-Za-z0-9][A-Za-z0-9-]{5,})"
    r"|(?P<slack_app>\bxapp-[A-Za-z0-9][A-Za-z0-9-]{5,})"
    r"|(?P<discord>\b[MNO][A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{20,})"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
    r"|(?P<signing>\bwhsec_[A-Za-z0-9_-]{6,})"
    r"|(?P<authorization>(?i:authorization)[\"']?\s*[:=]\s*[\"']?"
    r"(?>(?:(?i:bearer|bot|basic|token)\s+)?)" + _NOT_MASKED + r"[A-Za-z0-9._~+/=-]{6,})"
    r"|(?P<bearer>\b(?i:bearer)\s+"
    + _NOT_MASKED
    + r"(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{6,})"
    r"|(?P<url_password>\b[a-z][a-z0-9+.-]*://[^/\s:@\"']*:"
    + _NOT_MASKED
    + r"(?!\*+@)[^/\s@\"']+@)"
    r"|(?P<query>[?&](?i:token|access_token|api_key|apikey|key|secret|password|passwd|auth|sig"
    r"|signature)=" + _NOT_MASKED + r"[A-Za-z0-9._~+/=%-]{4,})"
)
# The suite's fake secrets that have no telltale shape (signing secrets, admin tokens, webhook
# secrets, passwords): a log line holding one leaked it whatever its shape.
KNOWN_SECRETS = (
    "8f14e45fceea167a5a36dedd4bea2543",  # Slack signing secrets
    "8f742231b10e8888abcd99yyyzzz85a5",
    "signing-secret-for-tests",
    "c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",  # Slack client secrets
    "client-secret-for-tests",
    "adm-7e57c0ffee-0123456789abcdef",  # admin API tokens
    "operator-admin-token-42",
    "admin-token-for-tests",
    "t0ken-for-tests",
    "ops-admin-token-0123456789",
    "whsec-5ecret-0123456789abcdef",  # Statuspage webhook secrets
    "s3cret-0123456789abcdef",
    "super-secret-token-1234",
    "pw-urlpass-0123456789",  # a password in a feed URL
)


def preview(secret: str) -> str:
    """Enough of a secret to find it in the test, never enough to use it."""
    shown = secret[: min(6, len(secret) // 4)]
    return f"{shown}… ({len(secret)} characters)"


def find_secrets(text: str, known: Iterable[str] = KNOWN_SECRETS) -> list[tuple[str, str]]:
    """(kind, secret) for every token shape and known secret in ``text``."""
    found = [(match.lastgroup or "token", match.group(0)) for match in SECRET_SHAPES.finditer(text)]
    found += [("known test secret", secret) for secret in known if secret in text]
    return found


_FORMATTER = JsonFormatter()


def written(record: logging.LogRecord, redaction: RedactingFilter) -> str:
    """What the product's handler would write for ``record``: redacted, as a JSON line.

    Works on a copy: the record goes on to other handlers (pytest's caplog) unchanged."""
    mine = copy.copy(record)
    redaction.filter(mine)
    return _FORMATTER.format(mine)


@dataclass(frozen=True)
class Finding:
    logger: str
    level: str
    kind: str
    secret: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.level} {self.logger}: {self.kind}: {preview(self.secret)}"


def scan(
    record: logging.LogRecord,
    configured: Iterable[str] | RedactingFilter = (),
    known: Iterable[str] = KNOWN_SECRETS,
) -> list[Finding]:
    """The secrets left in ``record`` after the product's redaction (which masks the
    ``configured`` secrets, as a process configured with them does)."""
    redaction = (
        configured if isinstance(configured, RedactingFilter) else RedactingFilter(configured)
    )
    return [
        Finding(record.name, record.levelname, kind, secret)
        for kind, secret in find_secrets(written(record, redaction), known)
    ]


def scrub(text: str, findings: Iterable[Finding]) -> str:
    """``text`` with every found secret replaced by its preview."""
    for finding in findings:
        text = text.replace(finding.secret, preview(finding.secret))
    return text


class LogScanHandler(logging.Handler):
    """Scans every record it sees; keeps the findings until the test phase is reported."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.redaction = RedactingFilter()
        self._findings: list[Finding] = []
        self.records = 0

    def configure(self, secrets: Iterable[str]) -> None:
        """The secrets the product would mask from now on (those of the test's settings)."""
        self.redaction = RedactingFilter(secrets)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            found = scan(record, self.redaction)
        except Exception:  # a record that cannot be rendered is logging's problem, not ours
            self.handleError(record)
            return
        self.records += 1
        self._findings += found

    def take(self) -> list[Finding]:
        """The findings since the last call (emit holds the handler's lock while it appends)."""
        self.acquire()
        try:
            findings, self._findings = self._findings, []
        finally:
            self.release()
        return findings


def report(findings: list[Finding], where: str) -> str:
    lines = [f"secrets in the log {where} (as `outagebot run` would write them, after redaction):"]
    lines += [f"  {finding}" for finding in dict.fromkeys(findings)]
    lines.append("Mask it in bot/logsetup.py, or stop logging it.")
    return "\n".join(lines)


class LogScan:
    """The plugin: installs the scanning handler and fails the tests whose records leak."""

    def __init__(self) -> None:
        self.configured: set[str] = set()
        self._outside_tests: set[str] = set()
        self._in_test = False
        self._outside: list[Finding] = []
        self.handler = LogScanHandler()
        self._levels: dict[str, int] = {}
        self._settings_init: Callable[..., None] | None = None

    def _remember(self, settings: Settings) -> None:
        secrets = set(settings_secrets(settings))
        if not self._in_test:
            self._outside_tests |= secrets
        if not secrets <= self.configured:
            self._use(self.configured | secrets)

    def _use(self, secrets: set[str]) -> None:
        self.configured = secrets
        self.handler.configure(secrets)

    def _patch_settings(self) -> None:
        """Notes the secrets of every Settings built: those a process running with it masks."""
        original = Settings.__init__
        self._settings_init = original
        plugin = self

        def init(self: Settings, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            plugin._remember(self)

        Settings.__init__ = init  # type: ignore[method-assign]

    def would_log(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` passes the logger levels as they would be without this plugin."""
        logger: logging.Logger | None = (
            logging.getLogger() if record.name == "root" else logging.getLogger(record.name)
        )
        while logger is not None:
            level = logger.level
            if level == logging.DEBUG and logger.name in self._levels:
                level = self._levels[logger.name]
            if level:
                return record.levelno >= level
            logger = logger.parent
        return True

    def _hide_extra_records(self) -> None:
        # pytest's own handlers (caplog, the captured-log report) see what they saw before: a
        # test counting caplog.records must not meet the DEBUG lines raised here for the scan.
        for handler in logging.getLogger().handlers:
            if type(handler).__module__ == "_pytest.logging":
                handler.addFilter(self.would_log)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        self._hide_extra_records()
        return (yield)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        self._hide_extra_records()
        return (yield)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        self._hide_extra_records()
        return (yield)

    def pytest_configure(self, config: pytest.Config) -> None:
        self._patch_settings()
        logging.getLogger().addHandler(self.handler)
        for name in DEBUG_LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        logging.getLogger().removeHandler(self.handler)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        if self._settings_init is not None:
            Settings.__init__ = self._settings_init  # type: ignore[method-assign]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self._outside += self.handler.take()  # logged at collection or between tests
        self._use(set(self._outside_tests))
        self._in_test = True
        try:
            return (yield)
        finally:
            self._in_test = False
            self._use(set(self._outside_tests))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        result = yield
        findings = self.handler.take()
        if findings:
            message = report(findings, f"during {call.when} of {item.nodeid}")
            # pytest prints a failed test's captured output and log: never the secret itself.
            result.sections = [(title, scrub(text, findings)) for title, text in result.sections]
            if result.passed or result.skipped:
                result.outcome = "failed"
                result.longrepr = message
            else:
                result.sections.append(("secrets in the log", message))
        return result

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(f"log scan: {self.handler.records} records scanned for secrets")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        findings = self._outside + self.handler.take()
        if findings:
            terminal = session.config.get_terminal_writer()
            terminal.line("")
            terminal.line(report(findings, "outside any test"), red=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


PLUGIN_NAME = "outagebot-log-scan"


def pytest_configure(config: pytest.Config) -> None:
    """Loaded by ``pytest_plugins`` in tests/conftest.py (or ``-p tests.log_scan``)."""
    if config.pluginmanager.get_plugin(PLUGIN_NAME) is None:
        config.pluginmanager.register(LogScan(), PLUGIN_NAME)
