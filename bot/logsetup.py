"""Logging configuration, applied by the CLI only (never at import time).

Two formats (``LOG_FORMAT``): readable text, or one JSON object per line for log shippers.
Both pass every record through `RedactingFilter`, so a token that reaches a log call (in the
message, its arguments, an exception or an extra field) is masked before anything is written.
Both escape control characters (status pages write titles we log), so one record is one line
and no logged value can forge a line or drive the terminal that shows the log.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from pydantic import SecretStr

from bot.settings import Settings, parse_webhook_secrets

MASK = "[redacted]"
_OURS = "_outagebot_handler"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Token shapes worth masking wherever they appear, even when they are not our own secrets.
_TOKEN_SHAPES = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]{8,}"  # Slack bot/user/legacy tokens
    r"|xapp-[A-Za-z0-9-]{8,}"  # Slack app-level tokens
    r"|[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}"  # Discord bot tokens
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"  # Authorization headers
    r"|whsec_[A-Za-z0-9_-]{16,}"  # our outgoing webhooks' signing secrets
)
# C0 and C1 controls, DEL and the Unicode line/paragraph separators: what could start a new
# line or drive a terminal. Tab stays: it cannot do either.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r"}
# Attributes every LogRecord has; anything else came from ``extra=`` and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class RedactingFilter(logging.Filter):
    """Masks token-shaped strings and the configured secrets in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is masked whole; short values would
        # mask ordinary words, so only secrets of 8 characters or more are matched literally.
        self._secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """The text with every secret and token shape masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _TOKEN_SHAPES.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "aiosqlite" and isinstance(record.args, tuple):
            record.args = tuple(_sql_only(arg) for arg in record.args)
        # Render the message once, then drop the arguments so no formatter re-renders them raw.
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD or isinstance(value, (int, float, bool, type(None))):
                continue
            # Anything else would reach a formatter as its repr: redact that text instead.
            setattr(record, key, self.redact(value if isinstance(value, str) else repr(value)))
        return True


def _sql_only(arg: object) -> object:
    """aiosqlite's DEBUG lines echo each call with its bound values, and stored values include
    secrets (the user-hash salt, webhook signing keys): keep the SQL, hide the values."""
    if isinstance(arg, functools.partial) and arg.args and isinstance(arg.args[0], str):
        name = getattr(arg.func, "__name__", "call")
        hidden = ", <values hidden>" if len(arg.args) > 1 else ""
        return f"{name}({arg.args[0]!r}{hidden})"
    return arg


def escape_controls(text: str) -> str:
    """The text with every control character written out (``\\n``, ``\\x1b``): one line, inert."""
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` with the message on one line; a traceback follows on indented lines, so
    every line that starts at the margin starts a record."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        lines = [self.formatMessage(record)]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            lines.append(_indented(record.exc_text))
        if record.stack_info:
            lines.append(_indented(self.formatStack(record.stack_info)))
        return "\n".join(lines)


def _indented(block: str) -> str:
    return "\n".join("  " + escape_controls(line) for line in block.split("\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, exc_info, then extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = (
                    value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
                )
        # json escapes C0 controls itself, not C1 ones or the Unicode line separators.
        return _CONTROL.sub(_json_escaped, json.dumps(entry, ensure_ascii=False))


def _json_escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret value the settings hold (tokens, signing secrets, admin token)."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
    if settings.statuspage_webhook_secrets is not None:
        # A list of service:secret pairs: each secret can show up alone (in a hook's path).
        with contextlib.suppress(ValueError):  # the app refuses to start with a bad list
            pairs = parse_webhook_secrets(settings.statuspage_webhook_secrets.get_secret_value())
            values.extend(pairs.values())
    return values


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record arrives, not when it was built
    (a replaced or closed stderr, as under a test runner, would otherwise break logging)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns it; sys.stderr is always used instead


def build_handler(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing in the configured format, with redaction (to stderr by default)."""
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.addFilter(RedactingFilter(settings_secrets(settings)))
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    return handler


def configure_logging(
    settings: Settings, *, quiet: bool = False, stream: TextIO | None = None
) -> None:
    """Log to stderr at the configured level; ``quiet`` keeps an interactive console readable."""
    level = settings.log_level
    if quiet and "log_level" not in settings.model_fields_set:
        level = "WARNING"
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _OURS, False)]
    if stream is None and len(ours) < len(root.handlers):
        # Like logging.basicConfig: a process that configured logging itself (an embedding
        # application, a test runner capturing logs) keeps its setup, level included.
        return
    for old in ours:
        root.removeHandler(old)
    handler = build_handler(settings, stream)
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter (apscheduler logs every job run at INFO) drowns our own lines.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))
