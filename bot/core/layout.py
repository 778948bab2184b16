"""Fitting a reply to what platforms show, in one place, so it loses the same content everywhere.

Each platform's limits are data (`DISCORD_LIMITS`, `SLACK_LIMITS`, `CONSOLE_LIMITS`); a reply is
fitted to the tightest of them (`REPLY_LIMITS`) by one rule: the body is cut at a span (never
inside a timestamp or link) and ends with "…" and a link to more; each field's value likewise;
later fields are dropped first (trouble and incidents come first) and a "…" field says so.
Renderers measure text as they spell it (escaping, timestamps), so no platform limit is ever
passed, and then only format what `fit_reply` kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.core.commands import Reply, ReplyField
from bot.core.links import WebLink
from bot.core.rich import Link, Plain, Quoted, RichText, Span, Strong

ELLIPSIS = "…"
LEFT_OUT_TEXT = "Some details were left out."
READ_MORE = "Read more"
LINK_MARKUP = len("[]()")
"""The most any platform adds around a link's label and address (Discord's markdown)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of one reply a platform shows, in characters as it renders them.

    None: the platform has no limit of its own there.
    """

    body: int | None = None
    field_count: int | None = None
    field_name: int | None = None
    field_value: int | None = None
    total: int | None = None
    """Body, fields, title and footer together."""


DISCORD_LIMITS = Limits(body=4096, field_count=25, field_name=256, field_value=1024, total=6000)
"""An embed: description, 25 fields of 256 + 1024 characters, 6,000 in all."""
SLACK_LIMITS = Limits(field_name=2000, field_value=2000)
"""Block Kit: a field's text holds its name and value in 2,000 characters; a long body is split
into sections, and the renderer keeps within 50 blocks."""
CONSOLE_LIMITS = Limits()
"""A terminal shows everything."""


def tightest(*limits: Limits) -> Limits:
    """The limits that satisfy every one of ``limits``."""

    def least(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return min(known) if known else None

    return Limits(
        body=least([item.body for item in limits]),
        field_count=least([item.field_count for item in limits]),
        field_name=least([item.field_name for item in limits]),
        field_value=least([item.field_value for item in limits]),
        total=least([item.total for item in limits]),
    )


REPLY_LIMITS = tightest(DISCORD_LIMITS, SLACK_LIMITS, CONSOLE_LIMITS)
"""What every platform fits a reply to, so the same reply loses the same content everywhere."""

Measure = Callable[[RichText], int]
"""The length of rich text as one platform renders it."""


@dataclass(frozen=True, slots=True)
class Fitted:
    """A reply cut to a platform's limits, and whether anything was left out."""

    reply: Reply
    truncated: bool


def fit_reply(
    reply: Reply,
    measure: Measure,
    *,
    reserved: int = 0,
    limits: Limits = REPLY_LIMITS,
) -> Fitted:
    """``reply`` with body and fields within ``limits`` as ``measure`` counts.

    ``reserved``: what the title and footer take of the total, as the platform shows them.
    A cut body or field points to ``reply.url`` when there is one.
    """
    more_url = reply.url
    body, body_cut = fit_text(reply.body, limits.body, measure, more_url=more_url)
    fields: list[ReplyField] = []
    values_cut = False
    for item in reply.fields[: limits.field_count]:
        value, value_cut = fit_text(item.value, limits.field_value, measure, more_url=more_url)
        values_cut = values_cut or value_cut
        fields.append(ReplyField(_fit_name(item.name, limits, measure), value, item.inline))
    sizes = [_field_size(item, measure) for item in fields]
    room = None if limits.total is None else limits.total - reserved - measure(body)
    kept = _fitting(sizes, room)
    dropped = kept < len(reply.fields)
    if dropped:
        note = ReplyField(ELLIPSIS, _left_out_note(more_url), inline=False)
        if room is not None:
            room -= max(1, measure((Quoted(ELLIPSIS),))) + _our_size(note.value, measure)
        kept = _fitting(sizes[:kept], room)
        if limits.field_count is not None:
            kept = min(kept, limits.field_count - 1)
        fields = [*fields[:kept], note]
    fitted = replace(reply, body=body, fields=tuple(fields))
    return Fitted(fitted, truncated=body_cut or values_cut or dropped)


def fit_text(
    text: RichText, limit: int | None, measure: Measure, *, more_url: WebLink | None = None
) -> tuple[RichText, bool]:
    """``text`` within ``limit``, and whether it was cut; cut text ends with "…" (and more)."""
    if limit is None or measure(text) <= limit:
        return text, False
    tail: RichText = (Plain(ELLIPSIS),)
    if more_url and len(more_url.address) + 20 < limit // 2:
        tail = (Plain(f"{ELLIPSIS}\n"), Link(READ_MORE, more_url.address))
    budget = limit - _our_size(tail, measure)
    kept: list[Span] = []
    used = 0
    for span in text:
        size = measure((span,))
        if used + size <= budget:
            kept.append(span)
            used += size
            continue
        if isinstance(span, Plain | Quoted | Strong):
            prefix = _longest_prefix(span, budget - used, measure)
            kept.extend([prefix] if prefix else [])
        break  # a timestamp or link is never cut in half: it is dropped whole
    return (*_rstrip(kept), *tail), True


def _longest_prefix(
    span: Plain | Quoted | Strong, room: int, measure: Measure
) -> Plain | Quoted | Strong | None:
    """The longest prefix of ``span`` that fits ``room`` as rendered, cut at a word."""
    if room <= 4:
        return None
    raw = span.text
    low, high = 0, min(len(raw), room)
    while low < high:  # escaping can lengthen text, so search the raw length that fits
        mid = (low + high + 1) // 2
        if measure((type(span)(raw[:mid]),)) <= room:
            low = mid
        else:
            high = mid - 1
    cut = raw[:low]
    space = cut.rfind(" ")
    if space > low * 0.8:  # cut at a word when that loses little
        cut = cut[:space]
    return type(span)(cut.rstrip()) if cut.strip() else None


def _rstrip(spans: list[Span]) -> list[Span]:
    """Trailing white space removed, so "…" follows the last word."""
    while spans and isinstance(last := spans[-1], Plain | Quoted | Strong):
        stripped = last.text.rstrip()
        if stripped:
            spans[-1] = type(last)(stripped)
            break
        spans.pop()
    return spans


def _fit_name(name: str, limits: Limits, measure: Measure) -> str:
    # A field's name is text we show as written by others (service and incident names).
    fitted, _ = fit_text((Quoted(name),), limits.field_name, measure)
    return "".join(span.text for span in fitted if isinstance(span, Plain | Quoted))


def _our_size(text: RichText, measure: Measure) -> int:
    """The room our own "…" and "Read more" take, the same on every platform.

    Platforms spell a link with more or fewer characters; counting the longest spelling
    everywhere keeps the room left for the reply itself, and so the cut, the same."""
    longest = sum(
        len(span.label) + len(span.url) + LINK_MARKUP if isinstance(span, Link) else len(span.text)
        for span in text
        if isinstance(span, Link | Plain)
    )
    return max(measure(text), longest)


def _field_size(item: ReplyField, measure: Measure) -> int:
    # An empty name or value is shown as one invisible character (platforms refuse empty ones).
    return max(1, measure((Quoted(item.name),))) + max(1, measure(item.value))


def _fitting(sizes: list[int], room: int | None) -> int:
    """How many of the first fields fit ``room``: later fields matter least (trouble and
    incidents come first), so they go first."""
    count, used = len(sizes), sum(sizes)
    while count and room is not None and used > room:
        count -= 1
        used -= sizes[count]
    return count


def _left_out_note(more_url: WebLink | None) -> RichText:
    return (Link(READ_MORE, more_url.address),) if more_url else (Plain(LEFT_OUT_TEXT),)
