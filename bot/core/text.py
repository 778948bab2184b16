"""Cleaning of untrusted text before we look at it (rendering-time escaping is per platform)."""

from __future__ import annotations

import re
import unicodedata

_ALLOWED_CONTROL = {"\n", "\t"}

# What ends a line on a terminal or in a text log (str.splitlines breaks on all of these).
_LINE_BREAK_RUNS = re.compile("[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")
_CRLF_OR_BREAK = re.compile("\r\n|[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# Bidi embeddings, overrides, isolates and marks: they reorder how the text around them reads.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def clean_user_text(text: str, max_length: int) -> str:
    """Drop control and invisible format characters, collapse ends, cap the length.

    Invisible characters (zero-width joiners, bidi overrides) are how people smuggle mentions
    and misleading text past filters, so they go before anything else sees the text.
    """
    kept = [
        ch
        for ch in text
        if ch in _ALLOWED_CONTROL or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    ]
    cleaned = "".join(kept).strip()
    return cleaned[:max_length]


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))].rstrip() + ellipsis


def clean_source_line(text: str) -> str:
    """A title or name from a status page, on one line and safe to print or log.

    Pages are written by others: ESC and OSC sequences would drive the operator's terminal, a
    CR or newline would forge a log line, and bidi overrides would show other text than is
    there. Line breaks become one space; other C0/C1 controls and bidi controls are dropped.
    Other format characters (zero-width joiners inside emoji) are text and stay.
    """
    return _without_controls(_LINE_BREAK_RUNS.sub(" ", text.replace("\t", " ")), keep="")


def clean_source_text(text: str) -> str:
    """An update body from a status page: paragraphs (\\n) and tabs stay, like the page shows
    them; CRLF and other line ends become \\n; other controls and bidi controls are dropped."""
    return _without_controls(_CRLF_OR_BREAK.sub("\n", text), keep="\n\t")


def _without_controls(text: str, *, keep: str) -> str:
    if text.isprintable():  # the common case, and a fast one
        return text
    return "".join(
        ch
        for ch in text
        if ch in keep or (unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS)
    )
