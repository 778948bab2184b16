"""Outgoing webhooks as an outbox platform: signed JSON POSTs, checked and pinned addresses.

Retries and backoff are the outbox worker's (`TransientDeliveryError`: 5xx, 408, 429,
timeouts, dropped connections). What counts as a permanent failure, and when a target is turned
off, is decided here: any other answer (3xx, 4xx) or a refused address fails the delivery
without pausing anything, and ``max_failures`` such failures in a row (a delivery whose retries
ran out counts as one) disable the target and tell its owners.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import Reply, Tone
from bot.core.outbox import DeliveryOutcome
from bot.core.rich import Quoted, rich
from bot.core.timeutil import Clock
from bot.delivery.retry_after import parse_retry_after
from bot.delivery.round_delivery import Tried
from bot.delivery.sender import (
    AlertData,
    AlertDataSender,
    ChannelRef,
    DeliveryError,
    PermanentDeliveryError,
    PlatformSender,
    TransientDeliveryError,
)
from bot.delivery.webhook_payload import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_payload,
    encode,
    sign,
)
from bot.net.address_policy import pinned_result
from bot.net.webhook_address import (
    WebhookAddressError,
    WebhookDnsError,
    WebhookPolicy,
    resolve_target,
)
from bot.store import webhook_store
from bot.store.webhook_models import WEBHOOK_PLATFORM, WebhookTargetRow

log = logging.getLogger(__name__)

DisabledHook = Callable[[WebhookTargetRow], Awaitable[None]]
_RETRYABLE = {408, 425, 429}


class WebhookRejected(PermanentDeliveryError):
    """This delivery failed for good; the target stays on until enough failures in a row."""

    pause_subscription = False


class PinnedResolver(AbstractResolver):
    """Answers with the addresses already checked, so the connection goes exactly there."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        self._host, self._addresses = host, addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:  # never reached through our own requests; refuse, not resolve
            raise OSError(f"unexpected host {host!r}")
        return [pinned_result(host, address, port) for address in self._addresses]

    async def close(self) -> None:
        return None


class WebhookSender:
    """Delivers alerts to webhook targets (the ``webhook`` platform of the outbox)."""

    platform = WEBHOOK_PLATFORM

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        policy: WebhookPolicy,
        user_agent: str,
        timeout: float = 10.0,
        max_failures: int = 5,
        on_disabled: DisabledHook | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._policy = policy
        self._user_agent = user_agent
        self._timeout = timeout
        self._max_failures = max_failures
        self.on_disabled = on_disabled

    async def deliver(self, target: ChannelRef, data: AlertData) -> None:
        """POST the signed alert to the target; raises the outbox's delivery errors."""
        async with self._sessions() as session:
            row = await session.get(WebhookTargetRow, _target_id(target))
            if row is None or not row.enabled:
                raise WebhookRejected("the webhook was removed or turned off")
            url, secret = row.url, row.secret
        body = encode(build_payload(data, sent_at=self._clock()))
        timestamp = str(int(self._clock().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            DELIVERY_HEADER: data.delivery_key,
        }
        try:
            # Checked again at send time: the name may point elsewhere since it was subscribed.
            parts, addresses = await resolve_target(url, self._policy)
        except WebhookDnsError as exc:
            raise TransientDeliveryError(str(exc)) from None
        except WebhookAddressError as exc:
            await self._failed(_target_id(target), str(exc))
            raise WebhookRejected(str(exc)) from None
        status, retry_after = await self._post(url, parts.hostname or "", addresses, body, headers)
        if 200 <= status < 300:
            await self._succeeded(_target_id(target))
            return
        if status in _RETRYABLE or status >= 500:
            raise TransientDeliveryError(
                f"the receiver answered HTTP {status}", retry_after=retry_after
            )
        error = f"the receiver answered HTTP {status}"
        await self._failed(_target_id(target), error)
        raise WebhookRejected(error)

    async def _post(
        self, url: str, host: str, addresses: list[str], body: bytes, headers: dict[str, str]
    ) -> tuple[int, float | None]:
        # One connector per request: it resolves only to the checked addresses (TLS still
        # verifies the host name). Webhook traffic is a few requests per incident, so losing
        # keep-alive costs nothing that matters.
        connector = aiohttp.TCPConnector(
            resolver=PinnedResolver(host, addresses), use_dns_cache=False
        )
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
                http.post(url, data=body, headers=headers, allow_redirects=False) as response,
            ):
                # The body is never read: only the status matters, and a receiver could send
                # an endless one.
                wait = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
                return response.status, wait
        except TimeoutError:
            raise TransientDeliveryError("the receiver did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise TransientDeliveryError(f"connection failed ({type(exc).__name__})") from None

    async def note_outcome(self, delivery: Tried, outcome: str) -> None:
        """Worker hook: a webhook delivery whose retries ran out counts as one failure."""
        if delivery.platform != WEBHOOK_PLATFORM or outcome != DeliveryOutcome.EXHAUSTED:
            return
        async with self._sessions() as session:
            target = await webhook_store.target_of_subscription(
                session=session, subscription_id=delivery.subscription_id
            )
        if target is not None and target.id is not None:
            await self._failed(
                target.id, f"gave up after retries ({delivery.last_error or 'error'})"
            )

    async def _succeeded(self, target_id: int) -> None:
        async with self._sessions() as session:
            row = await session.get(WebhookTargetRow, target_id)
            if row is not None:
                await webhook_store.record_success(session=session, target=row, now=self._clock())
                await session.commit()

    async def _failed(self, target_id: int, error: str) -> None:
        async with self._sessions() as session:
            row = await session.get(WebhookTargetRow, target_id)
            if row is None:
                return
            disabled = await webhook_store.record_failure(
                session=session, target=row, error=error, max_failures=self._max_failures
            )
            await session.commit()
            await session.refresh(row)
        if disabled:
            log.warning("webhook %s turned off: %s", target_id, row.disabled_reason)
            if self.on_disabled is not None:
                await self.on_disabled(row)


def disabled_notice(target: WebhookTargetRow) -> Reply:
    """What the owning community reads when one of its webhooks is turned off."""
    host = urlsplit(target.url).hostname or "?"
    return Reply(
        title="Webhook turned off",
        body=rich(
            f"Webhook #{target.id} to ",
            Quoted(host),
            f" stopped receiving alerts after {target.consecutive_failures} failed deliveries "
            "in a row (last: ",
            Quoted(target.last_error or "unknown error"),
            "). Fix the receiver, then run /subscribe with the same webhook to turn it back on.",
        ),
        tone=Tone.WARNING,
    )


def _target_id(target: ChannelRef) -> int:
    try:
        return int(target.channel_id)
    except ValueError:
        raise WebhookRejected("not a webhook target") from None


def owner_notifier(senders: Mapping[str, PlatformSender | AlertDataSender]) -> DisabledHook:
    """Tell a disabled target's community in the channel where it was subscribed; targets
    created through the admin API (or whose platform is not running here) get a log line."""

    async def notify(target: WebhookTargetRow) -> None:
        sender = senders.get(target.owner_platform)
        if (
            target.notice_channel_id is None
            or sender is None
            or isinstance(sender, AlertDataSender)
        ):
            log.warning(
                "webhook %s of %s turned off; no channel to tell", target.id, target.owner_platform
            )
            return
        channel = ChannelRef(
            target.owner_platform, target.owner_community, target.notice_channel_id
        )
        key = f"webhook-off:{target.id}:{target.consecutive_failures}"
        try:
            await sender.send(channel, disabled_notice(target), key=key)
        except DeliveryError as exc:
            log.warning("could not tell the owners of webhook %s: %s", target.id, exc)

    return notify
