"""A test adapter: type a command line, get the reply, on the path every chat adapter takes.

Shipped in the package (as errbot ships its test backend) so that our tests, and anyone writing
a cog of their own, drive commands one way: through the `CommandPipeline` every chat adapter
uses, so the line is parsed exactly as the console and Slack's ``/outage …`` parse it, then
dispatched with an actor the test chooses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any, Self, TypedDict, Unpack

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import Actor, CommandRegistry, Reply
from bot.core.ids import ChannelId, CommunityId, UserId
from bot.core.pipeline import Call, CommandPipeline, Line, Origin
from bot.core.rich import to_plain
from bot.core.timeutil import Clock
from bot.services.deps import AppDeps
from bot.sources.catalog import Catalog
from bot.store import catalog_store


class Who(TypedDict, total=False):
    """Who runs a command and where; what is left out takes the adapter's default."""

    platform: str
    user: str
    community: str
    channel: str | None
    admin: bool
    roles: tuple[str, ...]


@dataclass
class TestAdapter:
    """Runs commands as a chosen user of a chosen community; the defaults are set once."""

    __test__ = False  # a tool for tests, not a test class: pytest must not collect it
    name = "test"

    registry: CommandRegistry
    clock: Clock
    _: KW_ONLY
    deps: Any = None
    platform: str = "test"
    community: str = "g1"
    user: str = "u1"
    channel: str | None = None

    @classmethod
    def of(cls, deps: AppDeps, clock: Clock, **defaults: Any) -> Self:
        """An adapter over the cogs registered in ``deps``."""
        return cls(deps.registry, clock, deps=deps, **defaults)

    async def run(self, line: str, **who: Unpack[Who]) -> Reply:
        """The reply to a typed line such as ``/status openai`` (a bad line gets a refusal)."""
        return await self._pipeline().answer(Line(line), self._origin(who))

    async def invoke(
        self, command: str, options: Mapping[str, str] | None = None, **who: Unpack[Who]
    ) -> Reply:
        """The reply to a command with raw option text, as a slash command's form delivers it."""
        return await self._pipeline().answer(Call(command, options or {}), self._origin(who))

    def _pipeline(self) -> CommandPipeline:
        # Built per call (it is cheap), so it always uses the fields as they are now.
        return CommandPipeline(self.registry, self.deps, self.clock)

    def _origin(self, who: Who) -> Origin:
        # An explicit "" is kept: an empty user id is a case tests try, not "use the default".
        actor = Actor(
            platform=who.get("platform", self.platform),
            user_id=UserId(who.get("user", self.user)),
            is_admin=who.get("admin", False),
            roles=who.get("roles", ()),
        )
        channel = who.get("channel", self.channel)
        return Origin(
            actor=actor,
            community_id=CommunityId(who.get("community", self.community)),
            channel_id=ChannelId(channel) if channel is not None else None,
        )

    async def text(self, line: str, **who: Unpack[Who]) -> str:
        """The plain text of the reply to ``line`` (see `reply_text`)."""
        return self.plain(await self.run(line, **who))

    def plain(self, reply: Reply) -> str:
        """`reply_text` at the adapter's clock."""
        return reply_text(reply, self.clock())


def reply_text(reply: Reply, now: datetime) -> str:
    """Everything a reply says, as plain lines: title, body, ``name: value`` fields, footer."""
    parts = [reply.title or "", to_plain(reply.body, now)]
    parts += [f"{field.name}: {to_plain(field.value, now)}" for field in reply.fields]
    return "\n".join([*parts, to_plain(reply.footer, now)])


def headline_text(reply: Reply, now: datetime) -> str:
    """The title and body of a reply only, for checks that must not see fields or footer."""
    return "\n".join([reply.title or "", to_plain(reply.body, now)])


async def deps_for(
    sessions: async_sessionmaker[AsyncSession], catalog: Catalog, registry: CommandRegistry
) -> AppDeps:
    """Dependencies over ``catalog``, synced into the database as the running bot does."""
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
    return AppDeps(catalog=catalog, sessions=sessions, registry=registry)
