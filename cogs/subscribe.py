"""/subscribe, /unsubscribe, /subscriptions: which alerts a channel receives (admins)."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alerts import SEVERITIES
from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    OptionKind,
    OptionSpec,
    Reply,
    Tone,
    UserFacingError,
)
from bot.core.mention import Mention, MentionError, parse_mention
from bot.core.rich import Quoted, RichText, join_lines, rich
from bot.delivery.webhook_payload import new_secret
from bot.net.webhook_address import WebhookAddressError, WebhookPolicy, resolve_target
from bot.services.deps import AppDeps
from bot.store import alert_store, subscription_store, webhook_store
from bot.store.subscription_store import Scope
from bot.store.webhook_models import WebhookTargetRow
from cogs.common import resolve_service

MAX_SUBSCRIPTIONS_PER_COMMUNITY = 200
MAX_WEBHOOKS_PER_COMMUNITY = 20


def setup(registry: CommandRegistry) -> None:
    """Register the subscription commands."""
    service = OptionSpec(
        "service", "the service to follow, e.g. openai", kind=OptionKind.SERVICE, required=True
    )
    webhook = OptionSpec(
        "webhook", "an https:// URL to receive the alerts instead of this channel", max_length=500
    )
    registry.add(
        CommandSpec(
            name="subscribe",
            description="Post this service's alerts in this channel (admins)",
            handler=subscribe,
            admin_only=True,
            options=(
                service,
                OptionSpec("components", "only these components, comma separated", max_length=300),
                OptionSpec("min_severity", "lowest severity to post", choices=SEVERITIES),
                OptionSpec(
                    "mention",
                    "a role (Slack: a user group, @here or @channel) to ping on new alerts",
                    max_length=100,
                ),
                OptionSpec(
                    "early_warnings", "also unofficial early warnings", kind=OptionKind.BOOLEAN
                ),
                OptionSpec("maintenance", "also maintenance notices", kind=OptionKind.BOOLEAN),
                OptionSpec(
                    "alternatives",
                    "name working alternatives under major outages",
                    kind=OptionKind.BOOLEAN,
                ),
                webhook,
            ),
        )
    )
    registry.add(
        CommandSpec(
            name="unsubscribe",
            description="Stop this service's alerts in this channel (admins)",
            handler=unsubscribe,
            admin_only=True,
            options=(service, webhook),
        )
    )
    registry.add(
        CommandSpec(
            name="subscriptions",
            description="What this community's channels follow (admins)",
            handler=subscriptions,
            admin_only=True,
        )
    )


def _scope(ctx: Context[AppDeps]) -> tuple[Scope, str]:
    invocation = ctx.invocation
    if not invocation.channel_id:
        raise UserFacingError("Run this in the channel that should receive the alerts.")
    return Scope(invocation.actor.platform, invocation.community_id), invocation.channel_id


def _mention(ctx: Context[AppDeps], text: str | None) -> Mention | None:
    if text is None:
        return None
    try:
        return parse_mention(text, platform=ctx.invocation.actor.platform)
    except MentionError as exc:
        raise UserFacingError(str(exc)) from None


async def subscribe(
    ctx: Context[AppDeps],
    service: str,
    components: str | None,
    min_severity: str | None,
    mention: str | None,
    early_warnings: bool | None,
    maintenance: bool | None,
    alternatives: bool | None = None,
    webhook: str | None = None,
) -> Reply:
    """Create or update this channel's subscription."""
    target = resolve_service(ctx, service)
    scope, channel = _scope(ctx)
    names = [c.strip() for c in (components or "").split(",") if c.strip()][:20]
    if webhook is not None:
        if mention is not None:
            raise UserFacingError("A webhook cannot mention a role; leave mention out.")
        return await _subscribe_webhook(
            ctx, webhook, target.id, target.name, names, min_severity, maintenance, early_warnings
        )
    ping = _mention(ctx, mention)
    async with ctx.deps.sessions() as session:
        existing = await subscription_store.list_subscriptions(session=session, scope=scope)
        if len(existing) >= MAX_SUBSCRIPTIONS_PER_COMMUNITY:
            raise UserFacingError(
                f"This community already has {len(existing)} subscriptions, the limit."
            )
        row, created = await subscription_store.upsert_subscription(
            session=session,
            scope=scope,
            channel_id=channel,
            service_id=target.id,
            components=names,
            min_severity=min_severity or "minor",
            mention_role=ping,
            early_warnings=bool(early_warnings),
            maintenance=True if maintenance is None else maintenance,
            now=ctx.now,
            alternatives=True if alternatives is None else alternatives,
        )
        current = await alert_store.stage_open_alerts(
            session=session, subscription=row, now=ctx.now
        )
        await session.commit()
    verb = "will now post" if created else "now posts"
    severity = min_severity or "minor"
    what: list[RichText] = [
        rich(f"This channel {verb} {target.name} alerts of {severity} severity and up.")
    ]
    if names:
        what.append(rich("Only for: ", Quoted(", ".join(names)), "."))
    if ping is not None:
        what.append(rich(f"New alerts mention {_mention_label(ping)}."))
    what.append(rich("Maintenance notices: " + ("on." if maintenance is not False else "off.")))
    if current:
        what.append(
            rich(f"{target.name} has {current} open incident(s) right now: posting them here.")
        )
    return Reply(title="Subscribed", body=join_lines(what), tone=Tone.OK, ephemeral=True)


def _mention_label(ping: Mention) -> str:
    if ping.id is None:
        return f"@{ping.kind.value}"
    return "the group you picked" if ping.platform == "slack" else "the role you picked"


async def unsubscribe(ctx: Context[AppDeps], service: str, webhook: str | None = None) -> Reply:
    """Remove this channel's subscription."""
    target = resolve_service(ctx, service)
    scope, channel = _scope(ctx)
    if webhook is not None:
        return await _unsubscribe_webhook(ctx, scope, webhook, target.id, target.name)
    async with ctx.deps.sessions() as session:
        removed = await subscription_store.remove_subscription(
            session=session, scope=scope, channel_id=channel, service_id=target.id
        )
        await session.commit()
    if not removed:
        return Reply(body=rich(f"This channel was not following {target.name}."), ephemeral=True)
    return Reply(
        body=rich(f"This channel no longer receives {target.name} alerts."),
        tone=Tone.OK,
        ephemeral=True,
    )


async def subscriptions(ctx: Context[AppDeps]) -> Reply:
    """List this community's subscriptions."""
    scope = Scope(ctx.invocation.actor.platform, ctx.invocation.community_id)
    async with ctx.deps.sessions() as session:
        rows = await subscription_store.list_subscriptions(session=session, scope=scope)
        webhooks = await _webhook_lines(session, scope)
    if not rows and not webhooks:
        return Reply(
            body=rich("No channel here follows any service yet. Try /subscribe openai."),
            ephemeral=True,
        )
    lines: list[RichText] = []
    for row in rows:
        service = ctx.deps.catalog.get(row.service_id)
        name = service.name if service else row.service_id
        line = rich(f"#{row.channel_id}: {name} ({row.min_severity}+")
        extra = [", maintenance" if row.maintenance else ""]
        if row.components:
            line += (*rich(", only "), Quoted(row.components.replace("\n", ", ")))
        line += rich(f"{''.join(extra)})")
        if not row.enabled:
            line += (*rich(" ⚠️ paused: "), Quoted(row.disabled_reason or "delivery failed"))
        lines.append(line)
    return Reply(title="Subscriptions", body=join_lines(lines + webhooks), ephemeral=True)


async def _subscribe_webhook(
    ctx: Context[AppDeps],
    url: str,
    service_id: str,
    service_name: str,
    components: list[str],
    min_severity: str | None,
    maintenance: bool | None,
    early_warnings: bool | None,
) -> Reply:
    scope, channel = _scope(ctx)
    try:
        parts, _ = await resolve_target(url, ctx.deps.webhook_policy or WebhookPolicy())
    except WebhookAddressError as exc:
        raise UserFacingError(str(exc)) from None
    clean_url = parts.geturl()
    async with ctx.deps.sessions() as session:
        owned = await webhook_store.list_targets(
            session=session, owner_platform=scope.platform, owner_community=scope.community_id
        )
        if len(owned) >= MAX_WEBHOOKS_PER_COMMUNITY and clean_url not in {t.url for t in owned}:
            raise UserFacingError(f"This community already has {len(owned)} webhooks, the limit.")
        row, created = await webhook_store.add_target(
            session=session,
            owner_platform=scope.platform,
            owner_community=scope.community_id,
            url=clean_url,
            secret=new_secret(),
            notice_channel_id=channel,
            now=ctx.now,
        )
        subscription = await webhook_store.subscribe_target(
            session=session,
            target=row,
            service_id=service_id,
            components=components,
            min_severity=min_severity or "minor",
            maintenance=True if maintenance is None else maintenance,
            now=ctx.now,
            early_warnings=bool(early_warnings),
        )
        await alert_store.stage_open_alerts(session=session, subscription=subscription, now=ctx.now)
        await session.commit()
    lines = [
        rich(
            f"Webhook #{row.id} to ",
            Quoted(parts.hostname or ""),
            f" now receives {service_name} alerts of {min_severity or 'minor'} severity and up.",
        )
    ]
    if created:
        lines.append(
            rich(
                f"Signing secret, shown only this once: {row.secret} — the receiver checks the "
                "X-Outagebot-Signature header with it (see docs/webhooks.md)."
            )
        )
    else:
        lines.append(rich("It keeps the signing secret shown when it was first added."))
    lines.append(rich("If it fails repeatedly, it is turned off and this channel is told."))
    return Reply(title="Webhook subscribed", body=join_lines(lines), tone=Tone.OK, ephemeral=True)


async def _unsubscribe_webhook(
    ctx: Context[AppDeps], scope: Scope, url: str, service_id: str, service_name: str
) -> Reply:
    async with ctx.deps.sessions() as session:
        row = await _owned_target(session, scope, url)
        removed = row is not None and await webhook_store.unsubscribe_target(
            session=session, target=row, service_id=service_id
        )
        await session.commit()
    if not removed:
        return Reply(
            body=rich(f"That webhook was not receiving {service_name} alerts."), ephemeral=True
        )
    return Reply(
        body=rich(f"That webhook no longer receives {service_name} alerts."),
        tone=Tone.OK,
        ephemeral=True,
    )


async def _owned_target(session: AsyncSession, scope: Scope, url: str) -> WebhookTargetRow | None:
    """This community's target for a URL, as given or as normalised when it was added."""
    text = url.strip()
    for candidate in dict.fromkeys((text, urlsplit(text).geturl())):
        row = await webhook_store.find_target(
            session=session,
            owner_platform=scope.platform,
            owner_community=scope.community_id,
            url=candidate,
        )
        if row is not None:
            return row
    return None


async def _webhook_lines(session: AsyncSession, scope: Scope) -> list[RichText]:
    lines: list[RichText] = []
    for row in await webhook_store.list_targets(
        session=session, owner_platform=scope.platform, owner_community=scope.community_id
    ):
        services = await webhook_store.target_services(session=session, target=row)
        line = rich(f"webhook #{row.id} to ", Quoted(urlsplit(row.url).hostname or ""))
        line += rich(f": {', '.join(services) or 'nothing'}")
        if not row.enabled:
            line += (*rich(" ⚠️ turned off: "), Quoted(row.disabled_reason or "delivery failed"))
        lines.append(line)
    return lines
