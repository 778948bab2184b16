"""Logging configuration, applied by the CLI only (never at import time)."""

from __future__ import annotations

import logging
import sys

from bot.settings import Settings


def configure_logging(settings: Settings, *, quiet: bool = False) -> None:
    """Log to stderr at the configured level; ``quiet`` keeps an interactive console readable."""
    level = settings.log_level
    if quiet and "log_level" not in settings.model_fields_set:
        level = "WARNING"
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Third-party chatter (apscheduler logs every job run at INFO) drowns our own lines.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))
