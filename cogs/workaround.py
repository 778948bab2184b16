"""/workaround: share, rank and vote on workarounds, in one database every community shares.

Moderation (remove, hide, report, origin) lives in `cogs.workaround_moderation`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from bot.core.commands import (
    Button,
    CommandRegistry,
    CommandSpec,
    Context,
    Form,
    FormField,
    OptionSpec,
    Reply,
    ReplyField,
    Tone,
    UserFacingError,
)
from bot.core.links import plain_link_host
from bot.core.ranking import Candidate, rank
from bot.core.rich import Link, Plain, Quoted, Span, When, join_lines, rich
from bot.core.text import clean_user_text, truncate
from bot.services.deps import AppDeps
from bot.sources.catalog import ServiceDef
from bot.store import community_store
from bot.store.community_models import WorkaroundRow
from bot.store.community_store import VisibleWorkaround
from cogs.common import resolve_service
from cogs.workaround_moderation import (
    caller_hash,
    community_of,
    hide,
    origin,
    remove,
    report,
    visible_row,
)

ACTIONS = ("list", "add", "form", "vote", "remove", "hide", "unhide", "report", "origin")
MAX_TEXT = 500
MAX_TITLE = 100
MAX_LINK = 300
ADDS_PER_HOUR = 5
VOTES_PER_HOUR = 30
SHOWN = 5
STEPS_SHOWN = 400
WORKED_WORDS = frozenset({"worked", "works", "yes", "up", "👍", "✅"})
FAILED_WORDS = frozenset(
    {"didnt", "didn't", "didn’t", "didnt-work", "failed", "no", "down", "👎", "❌"}
)
PLATFORM_NAMES = {"discord": "Discord", "slack": "Slack", "console": "the console"}
# Letters, digits and URL punctuation only: no spaces, quotes, brackets or angle brackets that
# could close a markdown link or a Slack <url|label> around it.
_SAFE_URL = re.compile(r"^[A-Za-z0-9\-._~:/?#@!$&*+,;=%]+$")
_ID = re.compile(r"^#?(\d{1,9})$")
Parts = tuple[str, str, str | None]


def setup(registry: CommandRegistry) -> None:
    """Register /workaround."""
    registry.add(
        CommandSpec(
            name="workaround",
            description="Share and find workarounds while a service is down",
            handler=workaround,
            options=(
                OptionSpec(
                    "action",
                    "list, add, form, vote, remove, hide, unhide, report, origin",
                    required=True,
                    choices=ACTIONS,
                ),
                OptionSpec(
                    "target",
                    "a service (list, add, form) or a workaround number (vote, remove, hide…)",
                    max_length=100,
                ),
                OptionSpec(
                    "text",
                    "add: title | steps | optional http(s) link; vote: worked or didn't",
                    max_length=MAX_TEXT,
                ),
                OptionSpec("title", "add: the workaround's title", max_length=MAX_TEXT),
                OptionSpec("steps", "add: what to do", max_length=MAX_TEXT),
                OptionSpec("link", "add: an optional http(s) link", max_length=MAX_TEXT),
            ),
        )
    )


async def workaround(
    ctx: Context[AppDeps],
    action: str,
    target: str | None,
    text: str | None,
    title: str | None = None,
    steps: str | None = None,
    link: str | None = None,
) -> Reply:
    """Dispatch one /workaround action."""
    if text is not None and (title or steps or link):
        # A typed line: its free text spilled over into the later options, in order.
        text = " ".join(part for part in (text, title, steps, link) if part)
        title = steps = link = None
    if action == "list":
        return await list_workarounds(ctx, _service(ctx, target))
    if action == "form":
        return add_form(_service(ctx, target))
    if action == "add":
        parts = check_parts(title, steps, link) if text is None and (title or steps) else None
        return await add(ctx, _service(ctx, target), text, parts=parts)
    if action == "origin":
        return await origin(ctx, target, text)
    number = _number(target, action)
    if action == "vote":
        return await vote(ctx, number, text)
    if action == "remove":
        return await remove(ctx, number)
    if action in {"hide", "unhide"}:
        return await hide(ctx, number, hidden=action == "hide")
    return await report(ctx, number)


def _service(ctx: Context[AppDeps], target: str | None) -> ServiceDef:
    if target is None:
        raise UserFacingError("Name the service, for example /workaround list openai.")
    return resolve_service(ctx, target)


def _number(target: str | None, action: str) -> int:
    match = _ID.match((target or "").strip())
    if match is None:
        raise UserFacingError(
            f"Give the workaround's number, for example /workaround {action} 12 "
            "(/workaround list <service> shows the numbers)."
        )
    return int(match.group(1))


def parse_submission(text: str) -> tuple[str, str, str | None]:
    """Split ``title | steps | link`` into its parts; UserFacingError says what to fix."""
    parts = [p.strip() for p in text.split("|")]
    if len(parts) > 3:
        raise UserFacingError("Use at most three parts: title | steps | link.")
    if len(parts) == 1:
        # One piece of text: it is the steps, and its start is the title.
        return truncate(parts[0], MAX_TITLE), parts[0], None
    title, steps = parts[0], parts[1] or parts[0]
    if not title:
        raise UserFacingError("The title is empty: write title | steps | link.")
    if len(title) > MAX_TITLE:
        raise UserFacingError(
            f"The title is too long ({len(title)} characters; at most {MAX_TITLE}). "
            "Put the details after a |."
        )
    link = parts[2] if len(parts) == 3 and parts[2] else None
    return title, steps, check_link(link) if link else None


def check_parts(title: str | None, steps: str | None, link: str | None) -> Parts:
    """Title, steps and link given separately (the form): the same rules as one line."""
    steps = steps or title or ""
    title = title or truncate(steps, MAX_TITLE)
    if not steps or len(title) > MAX_TITLE:
        raise UserFacingError(f"Give the steps, and a title of at most {MAX_TITLE} characters.")
    return title, steps, check_link(link) if link else None


def add_form(service: ServiceDef) -> Reply:
    """The "share a workaround" form; where there are no forms, how to type it instead."""
    return Reply(
        title="Share a workaround",
        body=rich(f"Use /workaround add {service.id} title | steps | link (the link is optional)."),
        ephemeral=True,
        form=Form(
            title="Share a workaround",
            command=f"workaround add {service.id}",
            fields=(
                FormField("title", "Title", max_length=MAX_TITLE),
                FormField("steps", "Steps", long=True, max_length=MAX_TEXT),
                FormField("link", "Link (optional)", required=False, max_length=MAX_LINK),
            ),
        ),
    )


def check_link(link: str) -> str:
    """An http(s) link without tricks, or UserFacingError."""
    if len(link) > MAX_LINK:
        raise UserFacingError(f"The link is too long (at most {MAX_LINK} characters).")
    parts = urlsplit(link)
    if parts.scheme.casefold() not in {"http", "https"} or not parts.hostname:
        raise UserFacingError(
            "Links must start with https:// or http://; “",
            Quoted(truncate(link, 60)),
            "” doesn't.",
        )
    if not _SAFE_URL.match(link):
        raise UserFacingError("That link has characters I can't show safely (spaces, brackets…).")
    if "@" in parts.netloc:
        # https://status.openai.com@evil.example/ opens evil.example: the part before @ is a
        # user name, put there to make the link look like it goes somewhere else.
        raise UserFacingError(
            "Links can't hold a user name or password (the part before @): it hides where "
            "they really go, here “",
            Quoted(truncate(parts.hostname, 60)),
            "”. Share the plain address.",
        )
    if plain_link_host(link) is None:
        raise UserFacingError("That link's address isn't a plain host name, like example.com.")
    return link


async def add(
    ctx: Context[AppDeps],
    service: ServiceDef,
    text: str | None,
    *,
    parts: Parts | None = None,
) -> Reply:
    """Share a workaround with every community (from one line, or from the form's parts)."""
    if parts is None and text is None:
        raise UserFacingError(
            f"Say what to do, for example: /workaround add {service.id} "
            "Use the batch API | Send requests through /v1/batches | https://example.com/guide"
        )
    title, steps, link = parts or parse_submission(clean_user_text(text or "", MAX_TEXT))
    actor = ctx.invocation.actor
    async with ctx.deps.sessions() as session:
        author = await caller_hash(session, ctx)
        recent = await community_store.count_added_since(
            session=session, author_hash=author, since=ctx.now - timedelta(hours=1)
        )
        if recent >= ADDS_PER_HOUR:
            raise UserFacingError(
                f"You have shared {recent} workarounds in the last hour, the limit. "
                "Thank you! Please try again later."
            )
        alert = await community_store.open_alert(session=session, service_id=service.id)
        row = await community_store.add_workaround(
            session=session,
            row=WorkaroundRow(
                service_id=service.id,
                title=title,
                steps=steps,
                link=link,
                author_hash=author,
                origin_platform=actor.platform,
                origin_community_id=ctx.invocation.community_id,
                incident_title=alert.title if alert else None,
                created_at=ctx.now,
            ),
        )
        await session.commit()
    body = [
        rich(
            f"Thanks! Workaround #{row.id} for {service.name} is now shared with every "
            "community that uses outagebot."
        ),
        rich(f"It shows in /workaround list {service.id}, where people can vote on it."),
    ]
    if alert is not None:
        body.append(rich("Linked to the ongoing incident “", Quoted(alert.title), "”."))
    return Reply(title="Workaround shared", body=join_lines(body), tone=Tone.OK, ephemeral=True)


async def list_workarounds(ctx: Context[AppDeps], service: ServiceDef) -> Reply:
    """The best workarounds for a service that this community may see."""
    async with ctx.deps.sessions() as session:
        visible = await community_store.visible_workarounds(
            session=session, service_id=service.id, community=community_of(ctx)
        )
    share = Button(label="➕ Add workaround", action=f"workaround form {service.id}")
    if not visible:
        return Reply(
            title=f"Workarounds for {service.name}",
            body=rich(
                "No one has shared a workaround yet. Know one? "
                f"/workaround add {service.id} title | steps | link"
            ),
            buttons=(share,),
        )
    by_id = {v.row.id or 0: v for v in visible}
    order = rank(
        [Candidate(id=v.row.id or 0, created_at=v.row.created_at, votes=v.votes) for v in visible],
        ctx.now,
    )
    fields: list[ReplyField] = []
    buttons: list[Button] = []
    for candidate in order[:SHOWN]:
        item = by_id[candidate.id]
        fields.append(_field(item))
        buttons += [
            Button(
                label=f"✅ #{candidate.id} worked", action=f"workaround vote {candidate.id} worked"
            ),
            Button(
                label=f"❌ #{candidate.id} didn't", action=f"workaround vote {candidate.id} didnt"
            ),
        ]
    more = len(order) - SHOWN
    footer = "Best first: recent “worked for me” votes count most."
    if more > 0:
        footer += f" {more} more not shown."
    return Reply(
        title=f"Workarounds for {service.name}",
        body=rich("Shared by people in communities that use outagebot. Vote to help others."),
        fields=tuple(fields),
        buttons=(*buttons, share),
        footer=rich(footer, " Something wrong or harmful? /workaround report <number>"),
        tone=Tone.INFO,
    )


def _field(item: VisibleWorkaround) -> ReplyField:
    row = item.row
    worked = sum(1 for v in item.votes if v.worked)
    failed = len(item.votes) - worked
    value: list[Span] = [Quoted(row.title)]
    if row.steps != row.title:
        value += [Plain("\n"), Quoted(truncate(row.steps, STEPS_SHOWN))]
    host = plain_link_host(row.link) if row.link else None
    if row.link and host is not None:
        # The real host in the label: the reader sees where the link goes before opening it.
        value += [Plain("\n"), Link(f"More on {host}", row.link)]
    value += [Plain("\nShared "), When(row.created_at)]
    if row.incident_title:
        value += [Plain(" during “"), Quoted(truncate(row.incident_title, 80)), Plain("”")]
    if item.show_origin:
        value.append(Plain(f" · from {PLATFORM_NAMES.get(row.origin_platform, 'another app')}"))
        if item.origin_name:
            value += [Plain(", "), Quoted(item.origin_name)]
    return ReplyField(
        name=f"#{row.id} · ✅ {worked} worked · ❌ {failed} didn't",
        value=tuple(value),
        inline=False,
    )


def _verdict(text: str | None) -> bool:
    word = (text or "").strip().casefold().replace(" ", "")
    if word in WORKED_WORDS or word == "workedforme":
        return True
    if word in FAILED_WORDS or word.startswith("didn"):
        return False
    raise UserFacingError("Vote with “worked” or “didn't”, for example /workaround vote 12 worked.")


async def vote(ctx: Context[AppDeps], number: int, text: str | None) -> Reply:
    """Record that a workaround worked, or didn't, for this user (once per user)."""
    worked = _verdict(text)
    async with ctx.deps.sessions() as session:
        row = await visible_row(session, ctx, number)
        voter = await caller_hash(session, ctx)
        recent = await community_store.count_votes_since(
            session=session, voter_hash=voter, since=ctx.now - timedelta(hours=1)
        )
        if recent >= VOTES_PER_HOUR:
            raise UserFacingError(
                f"You have voted on {recent} workarounds in the last hour, the limit. "
                "Please try again later."
            )
        first = await community_store.record_vote(
            session=session, workaround_id=number, voter_hash=voter, worked=worked, now=ctx.now
        )
        await session.flush()
        good, bad = await community_store.vote_counts(session=session, workaround_id=number)
        await session.commit()
    said = "it worked for you" if worked else "it didn't work for you"
    lead = "Thanks, noted" if first else "Updated your vote (each person counts once)"
    return Reply(
        body=rich(
            f"{lead}: {said}. #{number} “",
            Quoted(truncate(row.title, 80)),
            f"” now has ✅ {good} · ❌ {bad}.",
        ),
        tone=Tone.OK,
        ephemeral=True,
    )
