"""The one way a command travels: parse → `Invocation` → dispatch → reply (errors included).

Discord, Slack, the console and `bot.testing.TestAdapter` each read their event into a
`Source` (what was asked) and an `Origin` (who asked, where) and hand both to a
`CommandPipeline`; everything after that is shared, so a line that does not parse, an unknown
command or a failing handler gets the same friendly private answer on every platform.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.core.commands import (
    Actor,
    CommandRegistry,
    CommandSpec,
    Invocation,
    Reply,
    UserFacingError,
    dispatch,
    error_reply,
)
from bot.core.ids import ChannelId, CommunityId
from bot.core.textcommand import form_options, parse_command_line
from bot.core.timeutil import Clock


@dataclass(frozen=True, slots=True)
class Line:
    """A typed command line (console, Slack's ``/outage …``) or a button's action."""

    text: str


@dataclass(frozen=True, slots=True)
class Call:
    """A command with raw option text, as a slash command's form delivers it."""

    command: str
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Submission:
    """A submitted form: its command line plus one value per field (`form_options`)."""

    command_line: str
    values: Mapping[str, str]


Source = Line | Call | Submission


@dataclass(frozen=True, slots=True)
class Origin:
    """Who asked and where, as the adapter read it from its event."""

    actor: Actor
    community_id: CommunityId
    channel_id: ChannelId | None = None
    raw: object = None
    """The platform's own event (see `Invocation.raw`)."""


OriginFor = Callable[[CommandSpec | None], Awaitable[Origin | Reply]]
"""An origin that depends on the command asked for (Slack asks who is an admin only when the
command needs it), or a refusal when the event does not say who asked."""


class CommandPipeline:
    """Answers sources from one registry with one set of dependencies at the clock's time."""

    def __init__(self, registry: CommandRegistry, deps: Any, clock: Clock) -> None:
        self.registry = registry
        self.deps = deps
        self.clock = clock

    async def answer(self, source: Source, origin: Origin | OriginFor) -> Reply:
        """The reply to ``source`` asked from ``origin``. Never raises for a user's mistake."""
        prepared = await self.prepare(source, origin)
        return prepared if isinstance(prepared, Reply) else await self.run(prepared)

    async def prepare(self, source: Source, origin: Origin | OriginFor) -> Invocation | Reply:
        """The invocation ``source`` asks for, or the refusal when it cannot be one."""
        try:
            command, options = self.parse(source)
        except UserFacingError as exc:
            return error_reply(*exc.text)
        if not isinstance(origin, Origin):
            found = await origin(self.registry.get(command))
            if isinstance(found, Reply):
                return found
            origin = found
        return Invocation(
            command=command,
            options=options,
            actor=origin.actor,
            community_id=origin.community_id,
            channel_id=origin.channel_id,
            raw=origin.raw,
        )

    def parse(self, source: Source) -> tuple[str, dict[str, str]]:
        """(command, raw options) of a source; `UserFacingError` when a line does not parse."""
        match source:
            case Line(text):
                return parse_command_line(self.registry, text)
            case Call(command, options):
                return command, dict(options)
            case Submission(command_line, values):
                return form_options(self.registry, command_line, values)
        raise AssertionError(source)  # pragma: no cover - Source is closed

    async def run(self, invocation: Invocation) -> Reply:
        """Dispatch an invocation now (`dispatch` turns every failure into a reply)."""
        return await dispatch(self.registry, invocation, self.deps, self.clock())
