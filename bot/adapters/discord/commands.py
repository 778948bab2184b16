"""The Discord slash-command tree, generated from the neutral command registry.

No command has Discord-specific code: each `CommandSpec` becomes an `app_commands.Command` whose
callback signature is built from its `OptionSpec`s, so discord.py derives the option types,
limits and choices itself, and one generic callback hands the raw values to the adapter.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Optional

import discord
from discord import app_commands

from bot.core.commands import (
    MAX_OPTION_LENGTH,
    CommandRegistry,
    CommandSpec,
    OptionKind,
    OptionSpec,
)
from bot.core.text import truncate
from bot.sources.catalog import Catalog, ServiceDef

log = logging.getLogger(__name__)

MAX_CHOICES = 25
DESCRIPTION_LIMIT = 100
CHOICE_NAME_LIMIT = 100

Invoke = Callable[[discord.Interaction, CommandSpec, dict[str, str]], Awaitable[None]]
"""What a slash command does when called: (interaction, spec, raw option text)."""


def build_commands(
    registry: CommandRegistry, *, invoke: Invoke, catalog: Callable[[], Catalog]
) -> list[app_commands.Command[Any, ..., None]]:
    """One app command per registered spec; SERVICE options autocomplete from ``catalog()``."""
    return [_build_command(spec, invoke=invoke, catalog=catalog) for spec in registry]


def _build_command(
    spec: CommandSpec, *, invoke: Invoke, catalog: Callable[[], Catalog]
) -> app_commands.Command[Any, ..., None]:
    async def callback(interaction: discord.Interaction, **values: object) -> None:
        await invoke(interaction, spec, raw_options(values))

    # discord.py reads option types, limits and defaults from the callback's signature.
    callback.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "interaction",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=discord.Interaction,
            ),
            *(_parameter(option) for option in spec.options),
        ]
    )
    callback.__name__ = callback.__qualname__ = f"slash_{spec.name}"
    described = app_commands.describe(
        **{o.name: truncate(o.description, DESCRIPTION_LIMIT) or o.name for o in spec.options}
    )(callback)
    choices = {
        o.name: [app_commands.Choice(name=c, value=c) for c in o.choices[:MAX_CHOICES]]
        for o in spec.options
        if o.choices and o.kind is OptionKind.STRING
    }
    if choices:
        described = app_commands.choices(**choices)(described)
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=spec.name,
        description=truncate(spec.description, DESCRIPTION_LIMIT) or spec.name,
        callback=described,
    )
    if spec.admin_only:
        # Hidden from members by default; dispatch re-checks the member's rights on every call.
        command.default_permissions = discord.Permissions(manage_guild=True)
    for option in spec.options:
        if option.kind is OptionKind.SERVICE:

            async def complete(
                interaction: discord.Interaction, current: str
            ) -> list[app_commands.Choice[str]]:
                return service_choices(catalog(), current)

            command.autocomplete(option.name)(complete)
    return command


def _parameter(option: OptionSpec) -> inspect.Parameter:
    annotation: Any
    if option.kind is OptionKind.INTEGER:
        if option.min_value is None and option.max_value is None:
            annotation = int
        else:
            annotation = app_commands.Range[int, option.min_value, option.max_value]
    elif option.kind is OptionKind.BOOLEAN:
        annotation = bool
    elif option.choices:
        annotation = str
    else:
        annotation = app_commands.Range[str, 1, min(option.max_length, MAX_OPTION_LENGTH)]
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=annotation if option.required else Optional[annotation],  # noqa: UP045
        default=inspect.Parameter.empty if option.required else None,
    )


def raw_options(values: dict[str, object]) -> dict[str, str]:
    """Typed values back to the raw text the neutral dispatcher parses."""
    raw: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            raw[name] = "yes" if value else "no"
        else:
            raw[name] = str(value)
    return raw


def service_choices(catalog: Catalog, current: str) -> list[app_commands.Choice[str]]:
    """Services matching what the user typed: prefix matches first, then substrings."""
    query = current.strip().casefold()[:100]
    scored: list[tuple[int, str, ServiceDef]] = []
    for service in catalog:
        names = (service.id, service.name.casefold(), *service.aliases)
        if not query or any(n.startswith(query) for n in names):
            scored.append((0, service.name.casefold(), service))
        elif any(query in n for n in names):
            scored.append((1, service.name.casefold(), service))
    if not scored and query:
        scored = [(2, "", s) for s in catalog.suggest(query, limit=MAX_CHOICES)]
    scored.sort(key=lambda item: (item[0], item[1]))
    return [
        app_commands.Choice(
            name=truncate(f"{service.name} ({service.id})", CHOICE_NAME_LIMIT), value=service.id
        )
        for _, _, service in scored[:MAX_CHOICES]
    ]


def tree_payload(tree: app_commands.CommandTree[Any], guild: discord.Object | None) -> list[Any]:
    """The JSON Discord receives on sync, for hashing."""
    return [command.to_dict(tree) for command in tree.get_commands(guild=guild)]


def tree_digest(payload: list[Any], scope: str) -> str:
    """A stable hash of the command definitions and where they are synced."""
    text = json.dumps({"scope": scope, "commands": payload}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def sync_if_changed(
    tree: app_commands.CommandTree[Any], *, dev_guild: int | None, state_file: Path
) -> bool:
    """Sync the tree (to the dev guild only, when set) unless the stored hash says it is current.

    Discord rate-limits command syncs hard (and global ones take a while to spread), so a
    restart with unchanged commands must not sync again.
    """
    guild = discord.Object(id=dev_guild) if dev_guild else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    scope = f"guild:{dev_guild}" if dev_guild else "global"
    digest = tree_digest(tree_payload(tree, guild), scope)
    if await asyncio.to_thread(_read_digest, state_file) == digest:
        log.info("Discord commands unchanged (%s); not syncing", scope)
        return False
    synced = await tree.sync(guild=guild)
    await asyncio.to_thread(_write_digest, state_file, digest)
    log.info("synced %d Discord commands (%s)", len(synced), scope)
    return True


def _read_digest(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _write_digest(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest + "\n", encoding="utf-8")
