"""Parse a typed command line (console, Slack's ``/outage …``) into a command and raw options."""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from bot.core.commands import (
    Actor,
    CommandRegistry,
    Invocation,
    OptionKind,
    Reply,
    UserFacingError,
    dispatch,
    error_reply,
)
from bot.core.rich import Quoted
from bot.core.text import clean_user_text

MAX_LINE_LENGTH = 2000


def parse_command_line(registry: CommandRegistry, line: str) -> tuple[str, dict[str, str]]:
    """Split ``/status openai`` or ``report openai what:errors`` into (command, options).

    Positional words fill the command's options in order; ``name:value`` or ``name=value`` sets
    one by name. The last text option takes the rest of the line, so free text needs no quotes.
    """
    line = clean_user_text(line, MAX_LINE_LENGTH + 1)
    if len(line) > MAX_LINE_LENGTH:
        raise UserFacingError(f"That line is too long (at most {MAX_LINE_LENGTH} characters).")
    try:
        words = shlex.split(line)
    except ValueError:  # an unbalanced quote: take the words as they stand
        words = line.split()
    if not words:
        raise UserFacingError("Type a command, for example /status or /help.")
    name, rest = words[0].lstrip("/").casefold(), words[1:]
    spec = registry.get(name)
    if spec is None:
        return name, {}
    named = {o.name: o for o in spec.options}
    options: dict[str, str] = {}
    positional: list[str] = []
    for word in rest:
        key, sep, value = word.partition(":") if ":" in word else word.partition("=")
        if sep and key.casefold() in named:
            options[key.casefold()] = value
        else:
            positional.append(word)
    free = [o for o in spec.options if o.name not in options]
    for index, option in enumerate(free):
        if not positional:
            break
        is_last = index == len(free) - 1
        if is_last and option.kind is OptionKind.STRING and not option.choices:
            options[option.name] = " ".join(positional)
            positional = []
        else:
            options[option.name] = positional.pop(0)
    if positional:
        extra = clean_user_text(" ".join(positional), 60)
        raise UserFacingError("I didn't understand “", Quoted(extra), f"”. Try /help {spec.name}.")
    return name, options


async def answer_line(
    registry: CommandRegistry,
    line: str,
    *,
    actor: Actor,
    community_id: str,
    channel_id: str | None,
    deps: Any,
    now: datetime,
) -> Reply:
    """The reply to one typed line: parse it, then dispatch. Never raises.

    A line that does not parse gets the same friendly private answer as any other refusal.
    """
    try:
        command, options = parse_command_line(registry, line)
    except UserFacingError as exc:
        return error_reply(*exc.text)
    invocation = Invocation(
        command=command,
        options=options,
        actor=actor,
        community_id=community_id,
        channel_id=channel_id,
    )
    return await dispatch(registry, invocation, deps, now)
