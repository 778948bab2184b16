"""/faq: what people ask during an outage, answered with live facts; communities add their own.

Built-in answers only state facts: what the provider's updates say, durations from incident data,
links from the catalog. Community entries (admins, /faq-edit) take precedence over them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    OptionKind,
    OptionSpec,
    Reply,
    ReplyField,
    Tone,
    UserFacingError,
)
from bot.core.events import EventKind
from bot.core.faq_facts import (
    MIN_SIMILAR_INCIDENTS,
    ComponentChange,
    affected_components,
    remaining,
    says_cause,
    says_compensation,
)
from bot.core.history import mean_time_to_recovery, uptime_percent
from bot.core.rich import Link, Plain, Quoted, RichText, Span, Strong, When, join_lines, rich
from bot.core.text import clean_user_text, truncate
from bot.core.timeutil import format_duration
from bot.core.wording import impact_adjective
from bot.services import facts
from bot.services.alternatives import operational_alternatives
from bot.services.deps import AppDeps
from bot.sources.catalog import ServiceDef
from bot.store import community_store, detection_store, service_state_store
from bot.store.community_store import Community, StoredIncident
from cogs.alternatives import alternative_line
from cogs.common import resolve_service
from cogs.history import past

QUOTE_CHARS = 500
RECENT = timedelta(days=7)
AGAIN_WINDOW = timedelta(days=90)
MAX_COMMUNITY_ENTRIES = 50
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True, slots=True)
class Topic:
    """A built-in FAQ topic."""

    key: str
    question: str
    aliases: tuple[str, ...]


TOPICS = (
    Topic("attack", "Is it an attack? What caused it?", ("cause", "hack", "hacked", "why")),
    Topic("duration", "How long has it been, and how long will it last?", ("how-long", "eta")),
    Topic("compensation", "Will I be compensated?", ("sla", "refund", "credit", "credits")),
    Topic("again", "Could it happen again?", ("reliability", "uptime", "history")),
    Topic("prepare", "How can I prepare for the next one?", ("backup", "plan", "prepare")),
)


def setup(registry: CommandRegistry) -> None:
    """Register /faq and /faq-edit."""
    registry.add(
        CommandSpec(
            name="faq",
            description="Answers to what everyone asks during an outage, with live facts",
            handler=faq,
            options=(
                OptionSpec(
                    "topic", "attack, duration, compensation, again, prepare…", max_length=40
                ),
                OptionSpec("service", "the service it is about", kind=OptionKind.SERVICE),
            ),
        )
    )
    registry.add(
        CommandSpec(
            name="faq-edit",
            description="Add, change or remove this community's own FAQ entries (admins)",
            handler=faq_edit,
            admin_only=True,
            options=(
                OptionSpec("action", "set or remove", required=True, choices=("set", "remove")),
                OptionSpec(
                    "topic", "a short name, e.g. attack or vpn", required=True, max_length=40
                ),
                OptionSpec("text", "the answer (set)", max_length=500),
            ),
        )
    )


def find_topic(text: str) -> Topic | None:
    """The built-in topic a user means by its key or an alias."""
    key = text.strip().casefold()
    return next((t for t in TOPICS if key == t.key or key in t.aliases), None)


def _community(ctx: Context[AppDeps]) -> Community:
    return Community(ctx.invocation.actor.platform, ctx.invocation.community_id)


def _topic_key(text: str) -> str:
    key = clean_user_text(text, 41).casefold().replace(" ", "-")
    topic = find_topic(key)
    if topic is not None:
        return topic.key
    if not _TOPIC.match(key):
        raise UserFacingError(
            "Topic names are short words: letters, digits and dashes, up to 40 characters."
        )
    return key


async def faq(ctx: Context[AppDeps], topic: str | None, service: str | None) -> Reply:
    """Answer /faq and /faq <topic> [service]."""
    community = _community(ctx)
    async with ctx.deps.sessions() as session:
        own = await community_store.faq_entries(session=session, community=community)
        if topic is None:
            return _topics(own)
        key = _topic_key(topic)
        entry = next((e for e in own if e.topic == key), None)
        if entry is not None:
            return Reply(
                title=f"FAQ: {key}",
                body=(Quoted(entry.text),),
                footer=rich("Written by this community's admins."),
            )
        builtin = find_topic(key)
        if builtin is None:
            raise UserFacingError(
                "There is no FAQ topic “", Quoted(key), "”. /faq lists the topics."
            )
        target = resolve_service(ctx, service) if service else None
        if target is None and builtin.key != "prepare":
            target = await _troubled_service(session, ctx)
        answer = await _ANSWERS[builtin.key](session, ctx, target)
    return Reply(
        title=builtin.question,
        body=join_lines(answer),
        footer=rich(
            "Facts from official status pages and incident history; I quote, I don't guess."
        ),
        tone=Tone.INFO,
    )


def _topics(own: Sequence[object]) -> Reply:
    keys = {getattr(e, "topic", "") for e in own}
    lines = [
        rich(
            Strong(t.key), f" — {t.question}", " (this community's answer)" if t.key in keys else ""
        )
        for t in TOPICS
    ]
    extra = sorted(k for k in keys if find_topic(k) is None)
    fields: tuple[ReplyField, ...] = ()
    if extra:
        fields = (ReplyField("From this community", (Quoted(", ".join(extra)),), inline=False),)
    return Reply(
        title="Outage FAQ",
        body=join_lines(lines),
        fields=fields,
        footer=rich("Ask with /faq <topic> [service], e.g. /faq duration openai."),
    )


async def _troubled_service(session: AsyncSession, ctx: Context[AppDeps]) -> ServiceDef:
    records = await service_state_store.service_states(session=session)
    troubled = [
        service
        for service in ctx.deps.catalog
        if (record := records.get(service.id)) is not None and record.state.in_trouble
    ]
    if len(troubled) == 1:
        return troubled[0]
    raise UserFacingError("Which service? For example: /faq duration openai.")


def _must(service: ServiceDef | None) -> ServiceDef:
    if service is None:  # only "prepare" answers without a service
        raise UserFacingError("Which service? For example: /faq duration openai.")
    return service


def _current(incidents: Sequence[StoredIncident]) -> StoredIncident | None:
    """The open incident, else the most recent one."""
    return next((i for i in incidents if i.resolved_at is None), None) or (
        incidents[0] if incidents else None
    )


def _quote(body: str, at: datetime, incident: StoredIncident) -> RichText:
    line: list[Span] = [
        Quoted(truncate(body, QUOTE_CHARS)),
        Plain(" — official update, "),
        When(at),
    ]
    if incident.url:
        line += [Plain(" · "), Link("incident page", incident.url)]
    return tuple(line)


async def _attack(
    session: AsyncSession, ctx: Context[AppDeps], service: ServiceDef | None
) -> list[RichText]:
    target = _must(service)
    incidents = await community_store.incidents_since(
        session=session, service_id=target.id, since=ctx.now - RECENT, updates=30
    )
    incident = _current(incidents)
    if incident is None:
        return [
            rich(f"{target.name} has no open or recent incident on its status page."),
            rich("Nothing has happened that needs explaining, as far as the provider says."),
        ]
    said = [(body, at) for status, body, at in incident.updates if says_cause(body, status)]
    head = rich(Strong(target.name), ": “", Quoted(incident.title), "”")
    if not said:
        return [
            head,
            rich(
                "The provider's updates have not said what caused it yet. Until they do, "
                "nobody outside knows whether it is an attack; treat claims either way as rumour."
            ),
        ]
    body, at = said[0]
    return [head, rich("What the provider says so far:"), _quote(body, at, incident)]


async def _duration(
    session: AsyncSession, ctx: Context[AppDeps], service: ServiceDef | None
) -> list[RichText]:
    target = _must(service)
    incidents = await community_store.incidents_since(
        session=session, service_id=target.id, since=ctx.now - RECENT
    )
    ongoing = next((i for i in incidents if i.resolved_at is None), None)
    if ongoing is None:
        last = incidents[0] if incidents else None
        if last is None or last.resolved_at is None:
            return [rich(f"{target.name} has no open incident right now.")]
        lasted = format_duration(last.resolved_at - last.started_at)
        return [
            rich(f"{target.name} has no open incident right now."),
            rich("The last one, “", Quoted(last.title), f"”, lasted {lasted}."),
        ]
    elapsed = ctx.now - ongoing.started_at
    lines = [
        rich(
            Strong(target.name),
            ": “",
            Quoted(ongoing.title),
            f"” has been going on for {format_duration(elapsed)} (since ",
            When(ongoing.started_at, "datetime"),
            ").",
        )
    ]
    events = await detection_store.events_for(session=session, service_id=target.id, limit=1000)
    changes = [
        ComponentChange(e.detail.get("component", "?"), e.detail.get("to", ""), e.at)
        for e in events
        if e.kind is EventKind.COMPONENT_CHANGED
    ]
    for name, status, since in affected_components(changes, ctx.now)[:10]:
        lines.append(
            rich("• ", Quoted(name), f": {status.replace('_', ' ')} for {format_duration(since)}")
        )
    similar = await facts.duration_estimate(
        session, service_id=target.id, impact=ongoing.impact, started_at=ongoing.started_at
    )
    estimate = similar.estimate
    if estimate is None:
        lines.append(
            rich(
                f"Not enough history for an estimate: {similar.similar} similar "
                f"({impact_adjective(ongoing.impact)}) incident(s) in the past year, I need "
                f"{MIN_SIMILAR_INCIDENTS}."
            )
        )
        return lines
    least, most = remaining(estimate, elapsed)
    lines.append(
        rich(
            f"Similar {impact_adjective(ongoing.impact)} incidents of {target.name} lasted "
            f"{format_duration(estimate.low)} to {format_duration(estimate.high)} "
            f"(the middle half of {estimate.count} incidents in the past year)."
        )
    )
    if most > timedelta():
        lines.append(
            rich(
                f"If this one is typical: about {format_duration(least)} to "
                f"{format_duration(most)} more. An estimate, not a promise."
            )
        )
    else:
        lines.append(rich("This one is already longer than most similar incidents."))
    return lines


async def _compensation(
    session: AsyncSession, ctx: Context[AppDeps], service: ServiceDef | None
) -> list[RichText]:
    target = _must(service)
    lines: list[RichText] = []
    if target.sla:
        lines.append(rich(f"{target.name}'s service level terms: ", Link(target.sla, target.sla)))
    else:
        lines.append(rich(f"I don't know of a published SLA for {target.name}."))
    if target.status_page:
        lines.append(rich("Status page: ", Link(target.status_page, target.status_page)))
    incidents = await community_store.incidents_since(
        session=session, service_id=target.id, since=ctx.now - AGAIN_WINDOW, updates=30
    )
    for incident in incidents:
        said = [(body, at) for _, body, at in incident.updates if says_compensation(body)]
        if said:
            lines.append(rich("What the provider has announced:"))
            lines.append(_quote(said[0][0], said[0][1], incident))
            break
    else:
        lines.append(
            rich("The provider's recent updates say nothing about credits or compensation.")
        )
    lines.append(rich("Credits, where an SLA grants them, usually have to be claimed."))
    return lines


async def _again(
    session: AsyncSession, ctx: Context[AppDeps], service: ServiceDef | None
) -> list[RichText]:
    target = _must(service)
    since = ctx.now - AGAIN_WINDOW
    incidents = await community_store.incidents_since(
        session=session, service_id=target.id, since=since
    )
    started = [i for i in incidents if i.started_at >= since or i.resolved_at is None]
    by_impact: dict[str, int] = {}
    for incident in started:
        by_impact[incident.impact] = by_impact.get(incident.impact, 0) + 1
    detail = ", ".join(f"{n} {impact_adjective(impact)}" for impact, n in sorted(by_impact.items()))
    uptime = uptime_percent(past(incidents), start=since, end=ctx.now)
    mttr = mean_time_to_recovery(past(incidents))
    lines = [
        rich(
            f"{target.name} in the last 90 days: {len(started)} incident(s)"
            + (f" ({detail})" if detail else "")
            + f", uptime {uptime:.2f} %"
            + (f", mean time to recovery {format_duration(mttr)}." if mttr else ".")
        ),
        rich("Every provider has outages; history shows how often, not when the next one comes."),
        rich(f"/history {target.id} lists them."),
    ]
    return lines


async def _prepare(
    session: AsyncSession, ctx: Context[AppDeps], service: ServiceDef | None
) -> list[RichText]:
    lines: list[RichText] = []
    if service is not None:
        found = await operational_alternatives(
            session=session, catalog=ctx.deps.catalog, service=service, now=ctx.now
        )
        if found:
            lines.append(rich(f"Operational right now instead of {service.name}:"))
            lines += [alternative_line(item) for item in found[:5]]
        else:
            lines.append(rich(f"No alternative to {service.name} is fully operational right now."))
    lines += [
        rich("• Get told first: an admin can /subscribe a channel to the services you use."),
        rich(
            "• Keep a second provider ready: /alternatives <service> lists who does the same job."
        ),
        rich("• Back up your work: export chats, prompts and files you can't lose."),
        rich("• In code, retry with exponential backoff and jitter, and set timeouts."),
        rich("• Shared tips from other communities: /workaround list <service>."),
    ]
    return lines


_ANSWERS = {
    "attack": _attack,
    "duration": _duration,
    "compensation": _compensation,
    "again": _again,
    "prepare": _prepare,
}


async def faq_edit(ctx: Context[AppDeps], action: str, topic: str, text: str | None) -> Reply:
    """Set or remove one of this community's FAQ entries (admins)."""
    key = _topic_key(topic)
    community = _community(ctx)
    async with ctx.deps.sessions() as session:
        if action == "remove":
            removed = await community_store.remove_faq_entry(
                session=session, community=community, topic=key
            )
            await session.commit()
            if not removed:
                return Reply(body=rich(f"This community has no “{key}” entry."), ephemeral=True)
            note = " The built-in answer is back." if find_topic(key) else ""
            return Reply(
                body=rich(f"Removed this community's “{key}” entry.{note}"),
                tone=Tone.OK,
                ephemeral=True,
            )
        if not text:
            raise UserFacingError(f"Write the answer, for example /faq-edit set {key} <text>.")
        existing = await community_store.faq_entries(session=session, community=community)
        if len(existing) >= MAX_COMMUNITY_ENTRIES and all(e.topic != key for e in existing):
            raise UserFacingError(
                f"This community has {len(existing)} entries, the limit. Remove one first."
            )
        created = await community_store.set_faq_entry(
            session=session, community=community, topic=key, text=text, now=ctx.now
        )
        await session.commit()
    verb = "Added" if created else "Updated"
    return Reply(
        body=rich(f"{verb} “{key}”. /faq {key} now shows your answer."),
        tone=Tone.OK,
        ephemeral=True,
    )
