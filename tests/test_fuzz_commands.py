"""Fuzz every registered command through the neutral dispatch, then render for both platforms.

For arbitrary option text (unicode, control and zero-width characters, huge strings, mentions,
markdown) from admins and members of several communities, on a seeded store:
- no exception escapes a handler (dispatch's "went wrong on our side" means one did);
- the Discord and Slack renderings fit every platform limit;
- no rendering pings anyone or lets user or status-page text format itself.

Examples are derandomized so a run is reproducible; counts keep the whole file under a minute.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.discord import render as discord_render
from bot.adapters.slack import render as slack_render
from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    OptionKind,
    Reply,
    UserFacingError,
)
from bot.core.rich import Link, Plain, RichText, Strong, to_plain
from bot.core.service_state import ServiceState
from bot.core.status import Incident, IncidentUpdate
from bot.core.textcommand import parse_command_line
from bot.services.deps import AppDeps
from bot.sources.catalog import parse_catalog
from bot.store import catalog_store, detection_store, service_state_store, source_store
from bot.store.engine import session_factory
from bot.testing import TestAdapter
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.helpers import snapshot

USER_MARK = "FUZZ"
PAGE_MARK = "PAGE"
"""Marks text that came from a user (fuzzed options) or a status page (seeded incidents)."""

CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": "openai-api",
                "name": "OpenAI API",
                "aliases": ["openai", "gpt"],
                "capabilities": ["chat"],
                "sla": "https://openai.example/sla",
                "status_page": "https://status.openai.example",
                "source": [{"kind": "statuspage", "url": "https://openai.example/summary.json"}],
            },
            {
                "id": "anthropic-api",
                "name": "Anthropic API",
                "aliases": ["claude"],
                "capabilities": ["chat"],
                "source": [{"kind": "statuspage", "url": "https://claude.example/summary.json"}],
            },
        ]
    }
)


def _injections(mark: str) -> list[str]:
    # fmt: off
    return [
        "@everyone", "@here", "@channel", "<@123456789012>", "<@!123456789012>",
        "<@&123456789012>", "<#123456789012>", "<!channel>", "<!here>", "<!everyone>",
        "<!subteam^S0123ABCD>", "</report:123456789012>", "<t:1700000000:R>",
        f"**{mark}**", f"__{mark}__", f"_{mark}_", f"*{mark}*", f"~~{mark}~~", f"~{mark}~",
        f"`{mark}`", f"```{mark}```", f"||{mark}||", f"[{mark}](https://evil.example)",
        f"<https://evil.example|{mark}>", f"# {mark}", f"> {mark}", f"-# {mark}",
    ]
    # fmt: on


USER_INJECTIONS = _injections(USER_MARK)
PAGE_TEXT = " ".join(_injections(PAGE_MARK))
# fmt: off
TRICKS = [
    "\u200b", "\u200d", "\u202e", "\ufeff", "\x00", "\x1b[31m", "\r\n", "\n", "\t", "\ud7ff",
    "🙂", "e\u0301", " ", ":", "|", '"', "'",
]
WORDS = [
    "openai", "gpt", "claude", "anthropic-api", "openai-api", "nosuch", "1", "2", "12", "0", "-1",
    "99999999999999999999999", "#1", "worked", "didn't", "yes", "no", "on", "off", "confirm",
    "set", "remove", "add", "list", "attack", "duration", "vpn", "major",
    "https://example.com/guide", "javascript:alert(1)", "123456789012", "<@&111111111111>",
]
# fmt: on

piece = st.one_of(
    st.sampled_from(USER_INJECTIONS),
    st.sampled_from(TRICKS),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
free_text = st.lists(piece, max_size=6).map("".join)
huge_text = st.tuples(
    st.sampled_from([*USER_INJECTIONS, "a", "é ", "\u200b"]), st.integers(50, 900)
).map(lambda pair: pair[0] * pair[1])
option_text = st.one_of(free_text, free_text, huge_text)


@dataclass(frozen=True, slots=True)
class Caller:
    platform: str
    user_id: str
    community: str
    admin: bool
    roles: tuple[str, ...]


callers = st.builds(
    Caller,
    platform=st.sampled_from(["discord", "slack", "console"]),
    user_id=st.one_of(st.sampled_from(["u1", "u2", "u3"]), st.text(max_size=30)),
    community=st.sampled_from(["A", "B", "C"]),
    admin=st.booleans(),
    roles=st.sampled_from([(), ("111111111111",), ("222222222222",)]),
)


def options_for(spec: CommandSpec) -> st.SearchStrategy[dict[str, str]]:
    """Option maps for one command: sensible values, hostile values, gaps and unknown names."""
    per_option: dict[str, st.SearchStrategy[str | None]] = {}
    for option in spec.options:
        good: list[str] = list(option.choices)
        if option.kind is OptionKind.SERVICE:
            good += ["openai", "claude"]
        if option.kind is OptionKind.INTEGER:
            good += [str(option.min_value or 0), str(option.max_value or 1)]
        if option.kind is OptionKind.BOOLEAN:
            good += ["yes", "no"]
        sensible = st.sampled_from(good) if good else free_text
        per_option[option.name] = st.one_of(st.none(), sensible, option_text)
    fixed = st.fixed_dictionaries(per_option).map(
        lambda raw: {name: value for name, value in raw.items() if value is not None}
    )
    extra = st.dictionaries(st.text(min_size=1, max_size=10), option_text, max_size=1)
    return st.one_of(fixed, fixed, fixed, st.tuples(fixed, extra).map(lambda p: {**p[1], **p[0]}))


REGISTRY = load_cogs(CommandRegistry())
COMMANDS = [spec.name for spec in REGISTRY]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the fuzz is about handlers and renderers; store tests cover PostgreSQL."""
    return f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"


@pytest.fixture
async def world(engine: AsyncEngine, clock: FakeClock) -> AppDeps:
    """A store with an open incident whose page text is hostile, workarounds, FAQ, roles."""
    sessions = session_factory(engine)
    now = clock.now
    incidents = (
        Incident(
            id="open-1",
            name=f"Elevated errors {PAGE_TEXT}"[:400],
            status="identified",
            impact="major",
            started_at=now - timedelta(minutes=50),
            resolved_at=None,
            url="https://status.openai.example/incidents/open-1",
            updates=(
                IncidentUpdate("identified", f"Caused by a bad deploy. {PAGE_TEXT}", now),
                IncidentUpdate("investigating", "Service credits apply. " + PAGE_TEXT, now),
            ),
        ),
        Incident(
            id="old-1",
            name=f"_{PAGE_MARK}_ and *{PAGE_MARK}* ~{PAGE_MARK}~",
            status="resolved",
            impact="major",
            started_at=now - timedelta(days=3),
            resolved_at=now - timedelta(days=3, hours=-2),
            url="https://status.openai.example/incidents/old-1",
        ),
    )
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        source = await source_store.get_source(
            session=session, url="https://openai.example/summary.json"
        )
        assert source is not None
        assert source.id is not None
        await source_store.record_push(
            session=session, source=source, snapshot=snapshot(incidents=incidents), now=now
        )
        await detection_store.link_incidents(
            session=session,
            service_id="openai-api",
            source_id=source.id,
            external_ids=[i.id for i in incidents],
        )
        await service_state_store.set_service_state(
            session=session, service_id="openai-api", state=ServiceState.MAJOR_OUTAGE, now=now
        )
        await service_state_store.set_service_state(
            session=session, service_id="anthropic-api", state=ServiceState.OPERATIONAL, now=now
        )
        await session.commit()
    deps = AppDeps(catalog=CATALOG, sessions=sessions, registry=REGISTRY)
    hostile = " ".join(USER_INJECTIONS[:8])
    seeds: list[tuple[str, dict[str, str], str, str, bool]] = [
        (
            "workaround",
            {"action": "add", "target": "openai", "text": "Batch | " + hostile},
            "u1",
            "A",
            False,
        ),
        ("workaround", {"action": "add", "target": "claude", "text": hostile}, "u2", "B", False),
        (
            "workaround",
            {"action": "origin", "target": "on", "text": "@everyone **FUZZ**"},
            "u1",
            "A",
            True,
        ),
        ("faq-edit", {"action": "set", "topic": "vpn", "text": hostile}, "u1", "A", True),
        ("faq-edit", {"action": "set", "topic": "attack", "text": hostile}, "u1", "B", True),
        ("adminrole", {"action": "add", "role": "111111111111"}, "u1", "A", True),
        ("subscribe", {"service": "openai", "components": hostile[:200]}, "u1", "A", True),
        (
            "report",
            {"service": "openai", "what": "errors", "details": hostile[:150]},
            "u3",
            "C",
            False,
        ),
    ]
    for command, options, user, community, admin in seeds:
        caller = Caller("discord", user, community, admin, ())
        reply = await run(deps, clock, command, options, caller)
        assert reply.tone.value != "warning", to_plain(reply.body, now)
    return deps


async def run(
    deps: AppDeps, clock: FakeClock, command: str, options: dict[str, str], caller: Caller
) -> Reply:
    return await TestAdapter.of(deps, clock).invoke(
        command,
        options,
        platform=caller.platform,
        user=caller.user_id,
        community=caller.community,
        admin=caller.admin,
        roles=caller.roles,
        channel="ch-" + caller.community,
    )


# --- what every reply must satisfy ---------------------------------------------------------------

_DISCORD_PING = re.compile(r"@(?:everyone|here)|<@!?\d|<#\d|</\w|<@&\d", re.IGNORECASE)
_DISCORD_OWN_ROLE = re.compile(r"<@&\d{5,25}>")
_SLACK_ANGLE = re.compile(r"<(?!https?://|!date\^\d+\^)")
_SLACK_BROADCAST = re.compile(r"@(?:channel|here|everyone)\b", re.IGNORECASE)


def raw_formatting(mark: str, platform: str) -> list[str]:
    """Formatting forms of ``mark`` that must never survive rendering unescaped."""
    if platform == "discord":
        return [
            f"**{mark}**",
            f"__{mark}__",
            f"_{mark}_",
            f"*{mark}*",
            f"~~{mark}~~",
            f"`{mark}`",
            f"||{mark}||",
            f"[{mark}](https://evil.example)",
            f"\n# {mark}",
            f"\n> {mark}",
            f"\n-# {mark}",
        ]
    return [f"*{mark}*", f"_{mark}_", f"~{mark}~", f"`{mark}`", f"|{mark}>"]


def spans(reply: Reply) -> Iterator[RichText]:
    yield reply.body
    yield reply.footer
    for field in reply.fields:
        yield field.value


def check_trusted_parts(reply: Reply, command: str) -> None:
    """User and page text only ever travels as Quoted (or a link label), never as our words."""
    ours: list[str] = [reply.title or "", *(b.label for b in reply.buttons)]
    ours += [f.name for f in reply.fields]
    for text in spans(reply):
        ours += [s.text for s in text if isinstance(s, Plain | Strong)]
    for text in ours:
        assert USER_MARK.casefold() not in text.casefold(), f"user text as our words: {text!r}"
        if command == "adminrole":
            # /adminrole list names the roles as role pills on purpose (allowed_mentions is
            # empty, so they never ping); the ids were validated as digits when added.
            text = _DISCORD_OWN_ROLE.sub("", text)
        for token in ("@everyone", "@here", "<@", "<#", "<!"):
            assert token not in text, f"a mention token in our words: {text!r}"


def check_discord(reply: Reply, clock: FakeClock, command: str) -> None:
    message = discord_render.render_reply(reply, clock.now)
    embed = message.embed
    assert len(embed.title or "") <= discord_render.TITLE_LIMIT
    assert len(embed.description or "") <= discord_render.DESCRIPTION_LIMIT
    assert len(embed.fields) <= discord_render.FIELD_COUNT_LIMIT
    for field in embed.fields:
        assert 0 < len(field.name or "") <= discord_render.FIELD_NAME_LIMIT
        assert 0 < len(field.value or "") <= discord_render.FIELD_VALUE_LIMIT
    assert len(embed.footer.text or "") <= 2048
    assert len(embed) <= discord_render.EMBED_TOTAL_LIMIT
    assert len(message.content or "") <= discord_render.CONTENT_LIMIT
    assert len(message.buttons) <= discord_render.MAX_BUTTONS
    for button in message.buttons:
        assert 0 < len(button.label) <= discord_render.BUTTON_LABEL_LIMIT
        assert button.url or len(button.custom_id or "") <= discord_render.CUSTOM_ID_LIMIT
    assert message.allowed_mentions.to_dict() == discord.AllowedMentions.none().to_dict()
    marked = [embed.description or "", *(f"{f.name}\n{f.value}" for f in embed.fields)]
    for text in [embed.title or "", embed.footer.text or "", *marked]:
        pings = _DISCORD_PING.findall(
            _DISCORD_OWN_ROLE.sub("", text) if command == "adminrole" else text
        )
        assert not pings, f"Discord would show a mention: {text!r}"
    for text in marked:
        framed = "\n" + text
        for mark in (USER_MARK, PAGE_MARK):
            for raw in raw_formatting(mark, "discord"):
                # A backslash before the first character is Discord's escape: inert.
                unescaped = re.search(r"(?<!\\)" + re.escape(raw), framed)
                assert unescaped is None, f"{raw!r} formats in Discord: {text!r}"


def slack_texts(blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for block in blocks:
        kind = block["type"]
        if "text" in block:
            yield kind, block["text"]
        for item in block.get("fields", ()):
            yield "field", item
        for item in block.get("elements", ()):
            if item.get("type") == "mrkdwn":
                yield "context", item
            elif item.get("type") == "button":
                yield "button", item["text"]


def check_slack(reply: Reply, clock: FakeClock) -> None:
    message = slack_render.render_reply(reply, clock.now)
    assert 0 < len(message.blocks) <= slack_render.MAX_BLOCKS
    assert len(message.text) <= slack_render.MAX_FALLBACK
    limits = {
        "header": slack_render.MAX_HEADER,
        "section": slack_render.MAX_SECTION,
        "field": slack_render.MAX_FIELD,
        "context": slack_render.MAX_CONTEXT,
        "button": slack_render.MAX_BUTTON_LABEL,
    }
    action_ids: list[str] = []
    for block in message.blocks:
        assert len(block.get("fields", ())) <= slack_render.MAX_FIELDS_PER_SECTION
        for element in block.get("elements", ()):
            if element.get("type") == "button":
                action_ids.append(element["action_id"])
                assert len(element["action_id"]) <= slack_render.MAX_ACTION_ID
                assert len(element.get("url", "")) <= slack_render.MAX_URL
        if block["type"] == "actions":
            assert len(block["elements"]) <= slack_render.MAX_BUTTONS_PER_ACTIONS
    assert len(action_ids) == len(set(action_ids))
    mrkdwn = [message.text]
    for kind, text in slack_texts(message.blocks):
        assert 0 < len(text["text"]) <= limits[kind], (kind, text)
        if text["type"] == "mrkdwn":
            assert text.get("verbatim") is True
            mrkdwn.append(text["text"])
    for text in mrkdwn:
        assert not _SLACK_ANGLE.search(text), f"Slack would parse a <…> token: {text!r}"
        assert not _SLACK_BROADCAST.search(text), f"Slack broadcast word: {text!r}"
        for mark in (USER_MARK, PAGE_MARK):
            for raw in raw_formatting(mark, "slack"):
                assert raw not in text, f"{raw!r} formats in Slack: {text!r}"


def check_actions(reply: Reply) -> None:
    """Buttons and forms carry command lines that parse into a known command, on both platforms."""
    lines = [b.action for b in reply.buttons if b.action and not b.url]
    if reply.form is not None:
        lines.append(reply.form.command)
        modal = slack_render.render_form(reply.form, channel_id="C1")
        assert modal is not None
        assert len(modal["title"]["text"]) <= slack_render.MAX_MODAL_TITLE
        assert discord_render.form_custom_id(reply.form) is not None
    for line in lines:
        command, _ = parse_command_line(REGISTRY, line)
        assert REGISTRY.get(command) is not None, line
        assert USER_MARK.casefold() not in line.casefold(), f"user text in an action: {line!r}"


def check_reply(
    reply: Reply, clock: FakeClock, command: str, caplog: pytest.LogCaptureFixture
) -> None:
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, f"/{command} raised: {failures[0].getMessage()} {failures[0].exc_text}"
    assert "went wrong on our side" not in to_plain(reply.body, clock.now)
    assert reply.form is None or reply.form.fields
    check_trusted_parts(reply, command)
    check_discord(reply, clock, command)
    check_slack(reply, clock)
    check_actions(reply)
    for text in spans(reply):
        for span in text:
            if isinstance(span, Link):
                assert span.url.startswith(("https://", "http://")), span


# --- the fuzzers ---------------------------------------------------------------------------------

FUZZ_SETTINGS = settings(
    max_examples=35,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("command", COMMANDS)
@FUZZ_SETTINGS
@given(data=st.data(), caller=callers)
async def test_every_command_survives_hostile_options(
    world: AppDeps,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    command: str,
    data: st.DataObject,
    caller: Caller,
) -> None:
    spec = REGISTRY.get(command)
    assert spec is not None
    options = data.draw(options_for(spec), label="options")
    caplog.clear()
    reply = await run(world, clock, command, options, caller)
    check_reply(reply, clock, command, caplog)


@FUZZ_SETTINGS
@given(
    line=st.tuples(
        st.one_of(st.sampled_from(COMMANDS), st.sampled_from(COMMANDS).map("/".__add__), piece),
        st.lists(option_text, max_size=4),
    ).map(lambda pair: " ".join([pair[0], *pair[1]])),
    caller=callers,
)
async def test_typed_lines_survive_hostile_text(
    world: AppDeps, clock: FakeClock, caplog: pytest.LogCaptureFixture, line: str, caller: Caller
) -> None:
    caplog.clear()
    try:
        command, options = parse_command_line(REGISTRY, line)
    except UserFacingError as exc:
        reply = Reply(body=exc.text)
        command = "?"
    else:
        reply = await run(world, clock, command, options, caller)
    check_reply(reply, clock, command, caplog)
