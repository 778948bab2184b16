"""Discord's checks on a command list registered with PUT /applications/{id}/commands.

Limits as documented (developers/interactions/application-commands): names 1-32 characters of
``^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$``, lowercase where a letter has a lowercase form;
descriptions 1-100 (empty for user and message commands); at most 25 options and 25 choices;
required options before optional ones; at most 4000 characters in a command's names,
descriptions, choice names and values together; 100 slash commands (15 user, 15 message) per
scope; names unique per command type and per option level. A refusal is 400 with code 50035 and
the path of the offending field, as Discord answers.
"""

from __future__ import annotations

import unicodedata
from typing import Any

MAX_COMMANDS = {1: 100, 2: 15, 3: 15}  # slash, user, message
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_COMMAND_CHARACTERS = 4000
_SUBCOMMANDS = (1, 2)  # SUB_COMMAND, SUB_COMMAND_GROUP

Path = tuple[str | int, ...]
Problem = tuple[Path, str, str]
"""Where (field path), Discord's error code, and its message."""


def command_list_error(commands: Any) -> dict[str, Any] | None:
    """Discord's 400 body for the first problems of ``commands``, or None if it accepts them."""
    if not isinstance(commands, list):
        return _body([((), "BASE_TYPE_ARRAY", "Must be an array.")])
    problems: list[Problem] = []
    seen: set[tuple[int, str]] = set()
    per_type: dict[int, int] = {}
    for index, command in enumerate(commands):
        kind = int(command.get("type") or 1)
        per_type[kind] = per_type.get(kind, 0) + 1
        if per_type[kind] > MAX_COMMANDS.get(kind, 0):
            limit = MAX_COMMANDS.get(kind, 0)
            problems.append(((index,), "APPLICATION_COMMANDS_TOO_MANY", f"At most {limit}."))
        if (kind, command.get("name")) in seen:
            message = "Application command names must be unique"
            problems.append(((index, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", message))
        seen.add((kind, command.get("name")))
        problems += _command_problems((index,), command, kind)
    return _body(problems) if problems else None


def _command_problems(where: Path, command: dict[str, Any], kind: int) -> list[Problem]:
    problems = _name_problems(where, command.get("name"), lowercase=kind == 1)
    description = command.get("description") or ""
    if kind == 1:
        problems += _length((*where, "description"), description, 1, 100)
    elif description:
        problems.append(((*where, "description"), "BASE_TYPE_BAD_LENGTH", "Must be empty."))
    problems += _options_problems(where, command.get("options") or [])
    if not problems and (size := _characters(command)) > MAX_COMMAND_CHARACTERS:
        message = f"Command exceeds maximum size ({MAX_COMMAND_CHARACTERS}), is {size}"
        problems.append((where, "APPLICATION_COMMAND_TOO_LARGE", message))
    return problems


def _options_problems(where: Path, options: list[dict[str, Any]]) -> list[Problem]:
    path = (*where, "options")
    if len(options) > MAX_OPTIONS:
        return [(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")]
    problems: list[Problem] = []
    names: set[Any] = set()
    optional_seen = False
    for index, option in enumerate(options):
        here = (*path, index)
        problems += _name_problems(here, option.get("name"), lowercase=True)
        problems += _length((*here, "description"), option.get("description") or "", 1, 100)
        if option.get("name") in names:
            message = "Option names must be unique"
            problems.append(((*here, "name"), "APPLICATION_COMMAND_OPTION_NAME_DUPLICATE", message))
        names.add(option.get("name"))
        if option.get("required") and optional_seen:
            message = "Required options must be placed before non-required options"
            problems.append((here, "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", message))
        if option.get("type") not in _SUBCOMMANDS:
            optional_seen = optional_seen or not option.get("required")
        choices = option.get("choices") or []
        if len(choices) > MAX_CHOICES:
            message = f"Must be {MAX_CHOICES} or fewer in length."
            problems.append(((*here, "choices"), "BASE_TYPE_MAX_LENGTH", message))
        for number, choice in enumerate(choices):
            problems += _length((*here, "choices", number, "name"), choice.get("name"), 1, 100)
        problems += _options_problems(here, option.get("options") or [])
    return problems


def _name_problems(where: Path, name: Any, *, lowercase: bool) -> list[Problem]:
    path = (*where, "name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return [(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")]
    valid = all(_name_character(c) for c in name) and (not lowercase or name == name.lower())
    if not valid:
        return [(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")]
    return []


def _name_character(character: str) -> bool:
    """In ``[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]``: Python's ``re`` has no \\p classes."""
    if character in "-_":
        return True
    category = unicodedata.category(character)
    if category[0] in "LN":
        return True
    script = unicodedata.name(character, "").split(" ", 1)[0]
    return script in ("DEVANAGARI", "THAI")  # their vowel signs and marks are not letters


def _length(path: Path, text: Any, low: int, high: int) -> list[Problem]:
    if isinstance(text, str) and low <= len(text) <= high:
        return []
    return [(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")]


def _characters(command: dict[str, Any]) -> int:
    """What counts towards the 4000: names, descriptions, choice names and values."""
    total = len(command.get("name") or "") + len(command.get("description") or "")
    for option in command.get("options") or []:
        total += _characters(option)
        for choice in option.get("choices") or []:
            total += len(str(choice.get("name") or "")) + len(str(choice.get("value") or ""))
    return total


def _body(problems: list[Problem]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    for path, code, message in problems:
        node = errors
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return {"code": 50035, "errors": errors, "message": "Invalid Form Body"}
