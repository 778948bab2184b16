"""What every chat platform offers the outbox worker: send, edit, reply in a thread, find.

Adapters implement `PlatformSender`; the worker never touches a platform library. Errors tell the
worker what to do next: retry later (`TransientDeliveryError`, with the platform's retry-after
when it gave one) or give up on this channel (`PermanentDeliveryError`: deleted channel, missing
permission, revoked token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.core.alert_render import AlertView
from bot.core.commands import Reply
from bot.core.mention import Mention


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A channel on a platform, inside one community (Discord guild, Slack workspace)."""

    platform: str
    community_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message we posted; ``thread_id`` is where its thread replies go, once there is one."""

    message_id: str
    thread_id: str | None = None


class DeliveryError(Exception):
    """A send, edit or reply did not happen."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying: rate limited, 5xx, connection dropped.

    ``rate_limited``: the platform is pacing us (a 429), not failing; the worker then spends
    few of the delivery's attempts on it, so a long 429 storm delays deliveries but drops none.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, rate_limited: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: the channel is gone, or we may not post there."""

    pause_subscription = True
    """False when the sender decides itself when to give up on the target (webhooks)."""


class PayloadRejectedError(PermanentDeliveryError):
    """The platform refused the message itself (Discord 50035 "Invalid Form Body", Slack
    ``invalid_blocks``): a bug in what we built, not a problem of the channel.

    Sending the same message again cannot help, and pausing the subscription would punish the
    channel for our mistake: the worker logs it and sends a plain version once instead.
    """

    pause_subscription = False


class PlatformSender(Protocol):
    """The delivery side of one chat platform."""

    platform: str

    async def send(
        self, channel: ChannelRef, reply: Reply, *, key: str, mention_role: Mention | None = None
    ) -> SentMessage:
        """Post a new message. ``key`` is unique per delivery: the platform's idempotency
        token where it has one (Discord nonce), and what `find_sent` looks for otherwise.
        ``mention_role``: who the message pings (a role, a user group, @here), if anyone."""

    async def edit(self, channel: ChannelRef, message: SentMessage, reply: Reply) -> None:
        """Replace the content of a message we posted."""

    async def reply_in_thread(
        self, channel: ChannelRef, message: SentMessage, reply: Reply, *, key: str
    ) -> SentMessage:
        """Reply under a message (creating its thread if needed); returns the reply, whose
        ``thread_id`` the worker stores on the parent for later replies."""

    async def find_sent(
        self, channel: ChannelRef, key: str, *, thread_id: str | None = None
    ) -> SentMessage | None:
        """A message we already posted with this key (after a crash between sending and
        recording), or None: among the channel's recent messages, or the thread's when
        ``thread_id`` is given (thread replies live there)."""


@dataclass(frozen=True, slots=True)
class AlertData:
    """An alert as data, for receivers that are programs rather than people."""

    delivery_key: str
    """Unique per delivery and the same on every retry: what receivers deduplicate on."""
    action: str
    alert_id: int
    subject_id: str
    version: int
    view: AlertView


@runtime_checkable
class AlertDataSender(Protocol):
    """The delivery side of a machine receiver (outgoing webhooks): state, not messages."""

    platform: str

    async def deliver(self, target: ChannelRef, data: AlertData) -> None:
        """Hand over the alert's current state; raises the same errors as `PlatformSender`."""
