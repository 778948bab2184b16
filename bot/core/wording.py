"""Small words shared by every place that shows them: counts and incident impacts."""

from __future__ import annotations

# What status pages state as an incident's impact; "none" (Statuspage's default, and ours when
# a page states nothing) says nothing about the impact, so it reads "Unknown".
_IMPACT_WORDS = {"none": "Unknown", "": "Unknown"}


def plural(count: int, word: str) -> str:
    """``1 incident``, ``2 incidents``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def impact_word(impact: str) -> str:
    """The impact as a capitalised word: ``Major``, ``Minor``, ``Unknown`` (never ``None``)."""
    return _IMPACT_WORDS.get(impact.strip().lower(), impact.strip().capitalize())


def impact_adjective(impact: str) -> str:
    """The impact inside a sentence: ``major`` incidents, ``unknown-impact`` incidents."""
    word = impact_word(impact).lower()
    return "unknown-impact" if word == "unknown" else word
