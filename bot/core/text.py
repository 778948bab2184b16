"""Cleaning of untrusted text before we look at it (rendering-time escaping is per platform)."""

from __future__ import annotations

import unicodedata

_ALLOWED_CONTROL = {"\n", "\t"}


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
