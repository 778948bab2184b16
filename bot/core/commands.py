"""The neutral command layer: what a command is, how it is invoked, and what it answers.

Adapters hand a platform event to `bot.core.pipeline`, which builds the `Invocation` and calls
`dispatch`; they render the `Reply`.
Cogs register `CommandSpec`s whose handlers take a `Context` and typed keyword arguments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from bot.core.ids import ChannelId, CommunityId, UserId
from bot.core.links import WebLink
from bot.core.rich import Quoted, RichText, Span, rich
from bot.core.text import clean_user_text

log = logging.getLogger(__name__)

DepsT = TypeVar("DepsT")

MAX_OPTION_LENGTH = 500
"""No option value is longer than this, whatever a spec allows (platforms cap near here too)."""


class OptionKind(StrEnum):
    """How an option's raw text is converted before it reaches the handler."""

    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    SERVICE = "service"
    """A service name or alias: a string that adapters autocomplete from the catalog."""


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One argument of a command."""

    name: str
    description: str
    kind: OptionKind = OptionKind.STRING
    required: bool = False
    choices: tuple[str, ...] = ()
    max_length: int = 100
    min_value: int | None = None
    max_value: int | None = None


class CommandOutcome(StrEnum):
    """How a command ended, as metrics count it."""

    OK = "ok"
    REFUSED = "refused"
    """The handler refused the input (a `UserFacingError`)."""
    DENIED = "denied"
    """An admin command from someone who is not one."""
    UNKNOWN = "unknown"
    ERROR = "error"
    """The handler failed; logged."""


Handler = Callable[..., Awaitable["Reply"]]
RoleAdminCheck = Callable[["Invocation", Any], Awaitable[bool]]
CommandObserver = Callable[[str, CommandOutcome, float], None]
"""(command, outcome, seconds): metrics, without a library."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command every adapter exposes the same way."""

    name: str
    description: str
    handler: Handler
    options: tuple[OptionSpec, ...] = ()
    admin_only: bool = False


@dataclass(frozen=True, slots=True)
class Actor:
    """Who invoked a command. ``is_admin`` is decided by the adapter from platform rights."""

    platform: str
    user_id: UserId
    display_name: str = ""
    is_admin: bool = False
    roles: tuple[str, ...] = ()
    """Platform role ids (Discord roles), for communities that name an admin role."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """A platform-neutral command call with raw option text, as the user typed it."""

    command: str
    options: Mapping[str, str]
    actor: Actor
    community_id: CommunityId
    channel_id: ChannelId | None = None
    raw: object = None
    """The platform's own event, an escape hatch for adapters; cogs never read it."""


class Tone(StrEnum):
    """How alarming a reply is; adapters map it to colour."""

    NEUTRAL = "neutral"
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    DANGER = "danger"


@dataclass(frozen=True, slots=True)
class ReplyField:
    """A labelled value (an embed field, a Block Kit field)."""

    name: str
    value: RichText
    inline: bool = True


@dataclass(frozen=True, slots=True)
class Button:
    """An action button. ``action`` is stable across restarts; ``url`` makes it a link button."""

    label: str
    action: str = ""
    url: WebLink | None = None


@dataclass(frozen=True, slots=True)
class FormField:
    """One text input of a `Form`; ``name`` is the option it fills."""

    name: str
    label: str
    long: bool = False
    required: bool = True
    max_length: int = 300


@dataclass(frozen=True, slots=True)
class Form:
    """A form (a Discord or Slack modal) whose submission runs ``command`` plus the fields.

    ``command`` is a command line prefix such as ``workaround add openai-api``; on submit the
    adapter parses it and sets one option per field (`bot.core.textcommand.form_options`), then
    dispatches.
    """

    title: str
    command: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """What a command answers, independent of the platform that renders it."""

    title: str | None = None
    body: RichText = ()
    fields: tuple[ReplyField, ...] = ()
    buttons: tuple[Button, ...] = ()
    url: WebLink | None = None
    """Where more is (the incident page): a cut body or field links to it."""
    footer: RichText = ()
    tone: Tone = Tone.NEUTRAL
    ephemeral: bool = False
    image_png: bytes | None = None
    image_alt: str = ""
    form: Form | None = None
    """Adapters that have forms open this instead of sending the message (then ``body`` is
    the fallback text)."""


class UserFacingError(Exception):
    """A problem the user can fix. Build the message from our words; wrap echoed input in Quoted."""

    def __init__(self, *parts: Span | str) -> None:
        self.text: RichText = rich(*parts)
        super().__init__(
            "".join(getattr(p, "text", "") if not isinstance(p, str) else p for p in parts)
        )


@dataclass(frozen=True, slots=True)
class Context(Generic[DepsT]):
    """What a handler gets besides its arguments."""

    invocation: Invocation
    deps: DepsT
    now: datetime


class CommandRegistry:
    """The commands every adapter offers, in registration order."""

    def __init__(self, *, on_answered: CommandObserver | None = None) -> None:
        self._commands: dict[str, CommandSpec] = {}
        self.role_admin_check: RoleAdminCheck | None = None
        """Set by the admin-role cog: does one of the actor's roles make them an admin here?"""
        self.on_answered = on_answered
        """Told (command, outcome, seconds) after each answer (the metrics)."""

    def add(self, spec: CommandSpec) -> None:
        """Register a command; names are unique."""
        if spec.name in self._commands:
            raise ValueError(f"command {spec.name!r} registered twice")
        self._commands[spec.name] = spec

    def get(self, name: str) -> CommandSpec | None:
        """The command called ``name`` (case-insensitive, leading slash ignored)."""
        return self._commands.get(name.strip().lstrip("/").casefold())

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self._commands.values())


def error_reply(*parts: Span | str) -> Reply:
    """A short, friendly, private answer for something that went wrong."""
    return Reply(body=rich(*parts), tone=Tone.WARNING, ephemeral=True)


async def dispatch(
    registry: CommandRegistry, invocation: Invocation, deps: Any, now: datetime
) -> Reply:
    """Run one invocation. Never raises: every failure becomes a friendly reply."""
    started = time.perf_counter()
    spec = registry.get(invocation.command)
    reply, outcome = await _run(registry, spec, invocation, deps, now)
    if registry.on_answered is not None:
        # Only registered names: a label per mistyped command would grow without bound.
        registry.on_answered(
            spec.name if spec else "unknown", outcome, time.perf_counter() - started
        )
    return reply


async def _run(
    registry: CommandRegistry,
    spec: CommandSpec | None,
    invocation: Invocation,
    deps: Any,
    now: datetime,
) -> tuple[Reply, CommandOutcome]:
    if spec is None:
        name = clean_user_text(invocation.command, 40)
        unknown = error_reply("I don't know the command “", Quoted(name), "”. Try /help.")
        return unknown, CommandOutcome.UNKNOWN
    if spec.admin_only and not await _is_admin(registry, invocation, deps):
        return error_reply("Only server admins can use this command."), CommandOutcome.DENIED
    try:
        arguments = parse_options(spec, invocation.options)
        context = Context(invocation=invocation, deps=deps, now=now)
        return await spec.handler(context, **arguments), CommandOutcome.OK
    except UserFacingError as exc:
        return error_reply(*exc.text), CommandOutcome.REFUSED
    except Exception:
        log.exception("command %s failed", spec.name)
        return error_reply(
            "Something went wrong on our side. It has been logged; please try again."
        ), CommandOutcome.ERROR


async def _is_admin(registry: CommandRegistry, invocation: Invocation, deps: Any) -> bool:
    if invocation.actor.is_admin:
        return True
    check = registry.role_admin_check
    if check is None or not invocation.actor.roles:
        return False
    try:
        return await check(invocation, deps)
    except Exception:
        log.exception("admin role check failed; refusing")
        return False


def parse_options(spec: CommandSpec, raw: Mapping[str, str]) -> dict[str, object]:
    """Validate and convert raw option text into handler keyword arguments."""
    known = {o.name for o in spec.options}
    unknown = [name for name in raw if name not in known]
    if unknown:
        shown = clean_user_text(unknown[0], 40)
        expected = ", ".join(sorted(known)) or "none"
        raise UserFacingError(
            f"/{spec.name} has no option “", Quoted(shown), f"” (options: {expected})."
        )
    values: dict[str, object] = {}
    for option in spec.options:
        text = raw.get(option.name)
        if text is not None:
            text = clean_user_text(text, MAX_OPTION_LENGTH + 1)
        if not text:
            if option.required:
                raise UserFacingError(f"/{spec.name} needs a {option.name}: {option.description}.")
            values[option.name] = None
            continue
        values[option.name] = _convert(spec, option, text)
    return values


def _convert(spec: CommandSpec, option: OptionSpec, text: str) -> object:
    if len(text) > min(option.max_length, MAX_OPTION_LENGTH):
        raise UserFacingError(
            f"{option.name} is too long (at most {option.max_length} characters)."
        )
    if option.kind is OptionKind.INTEGER:
        try:
            number = int(text)
        except ValueError:
            raise UserFacingError(f"{option.name} must be a whole number.") from None
        low, high = option.min_value, option.max_value
        if (low is not None and number < low) or (high is not None and number > high):
            raise UserFacingError(f"{option.name} must be between {low} and {high}.")
        return number
    if option.kind is OptionKind.BOOLEAN:
        lowered = text.casefold()
        if lowered in {"yes", "y", "true", "on", "1"}:
            return True
        if lowered in {"no", "n", "false", "off", "0"}:
            return False
        raise UserFacingError(f"{option.name} must be yes or no.")
    if option.choices:
        match = next((c for c in option.choices if c.casefold() == text.casefold()), None)
        if match is None:
            raise UserFacingError(f"{option.name} must be one of: {', '.join(option.choices)}.")
        return match
    return text
