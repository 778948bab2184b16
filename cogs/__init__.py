"""Feature handlers shared by every adapter. Each cog module has ``setup(registry)``."""

from __future__ import annotations

from importlib import import_module

from bot.core.commands import CommandRegistry

COG_MODULES = (
    "cogs.status",
    "cogs.subscribe",
    "cogs.report",
    "cogs.adminrole",
    "cogs.service",
    "cogs.workaround",
    "cogs.faq",
    "cogs.alternatives",
    "cogs.history",
    "cogs.privacy",
    "cogs.help",
)


def load_cogs(registry: CommandRegistry) -> CommandRegistry:
    """Register every cog's commands on ``registry``."""
    for name in COG_MODULES:
        import_module(name).setup(registry)
    return registry
