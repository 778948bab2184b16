"""Parse a typed command line (console, Slack's ``/outage …``, buttons, forms) into raw options.

Only this module parses lines; `bot.core.commands` knows nothing of it (no import cycle).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from bot.core.commands import CommandRegistry, OptionKind, UserFacingError
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


def form_options(
    registry: CommandRegistry, command_line: str, values: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """A submitted form as (command, raw options): its command line, then one option per field.

    Empty values are left out, so an optional field left blank is simply not given; a value
    never replaces an option the command line already sets (the line is ours, the values not).
    """
    command, options = parse_command_line(registry, command_line)
    for name, value in values.items():
        if value.strip() and name not in options:
            options[name] = value
    return command, options
