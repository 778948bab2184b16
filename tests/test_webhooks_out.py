"""Outgoing webhooks end to end: /subscribe or the admin API, the real poller and outbox, the
real aiohttp client, and a fake receiver (an aiohttp server on 127.0.0.1, port 0)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime

import pytest
from sqlmodel import select

from bot.core.rich import to_plain
from bot.store.models import SubscriptionRow
from tests.conftest import REPO
from tests.webhooks_rig import HOOK, SERVICES, TIMELINE, Rig, build_rig

rig = pytest.fixture(build_rig(allow_private=True))
strict_rig = pytest.fixture(build_rig(allow_private=False))
fragile_rig = pytest.fixture(build_rig(allow_private=True, max_failures=3))
impatient_rig = pytest.fixture(build_rig(allow_private=True, max_attempts=3, timeout=0.3))


def documented_verifier() -> Callable[..., bool]:
    """The verification snippet of docs/webhooks.md, run as written."""
    text = (REPO / "docs" / "webhooks.md").read_text(encoding="utf-8")
    section = text.split("## Verifying a delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "docs/webhooks.md lost its verification snippet"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "docs/webhooks.md", "exec"), namespace)
    verify = namespace["verify_outagebot_signature"]
    assert callable(verify)
    return verify  # type: ignore[no-any-return]


async def test_a_subscribed_webhook_gets_signed_deliveries_that_verify(rig: Rig) -> None:
    answer = await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    secret = re.search(r"whsec_[A-Za-z0-9_-]+", answer)
    assert secret is not None
    assert "shown only this once" in answer
    again = await rig.say("subscribe", service="gemini", webhook=rig.receiver.url())
    assert "whsec_" not in again  # the secret is shown once, not on later subscriptions
    await rig.outage(minutes=30)
    await rig.drain()
    # Both services' pages show an incident: two documents, never one digest.
    assert len(rig.receiver.received) == 2
    [first] = [r for r in rig.receiver.received if b'"id":"claude"' in r.body]
    body = first.json
    verify = documented_verifier()
    timestamp = first.headers["X-Outagebot-Timestamp"]
    now = float(timestamp) + 5  # the receiver reads it a few seconds later
    assert verify(
        secret.group(0), timestamp, first.body, first.headers["X-Outagebot-Signature"], now=now
    )
    assert not verify(
        secret.group(0),
        timestamp,
        first.body + b" ",
        first.headers["X-Outagebot-Signature"],
        now=now,
    )
    assert not verify(
        "whsec_wrong", timestamp, first.body, first.headers["X-Outagebot-Signature"], now=now
    )
    assert not verify(
        secret.group(0),
        timestamp,
        first.body,
        first.headers["X-Outagebot-Signature"],
        now=now + 3600,
    )
    assert body["schema"] == "outagebot.alert.v1"
    assert body["event"] == "alert.opened"
    assert body["delivery_id"] == first.headers["X-Outagebot-Delivery"]
    assert body["service"] == {"id": "claude", "name": "Claude"}
    assert body["severity"] == "major"
    assert body["status"] == "investigating"
    incident = body["incident"]
    assert isinstance(incident, dict)
    assert incident["title"] == "Elevated errors across many models"
    links, update = body["links"], body["update"]
    assert isinstance(links, dict)
    assert str(links["incident"]).startswith("https://")
    assert isinstance(update, dict)
    assert update["text"]
    assert first.headers["Content-Type"] == "application/json"


async def test_updates_and_resolution_follow_as_state(rig: Rig) -> None:
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    end = TIMELINE.updates[-1].posted_at + timedelta(minutes=2)
    minute = 0
    while TIMELINE.started_at + timedelta(minutes=minute) <= end:
        await rig.outage(minutes=minute)
        await rig.drain()
        minute += 5
    events = [
        r.json["event"]
        for r in rig.receiver.received
        if r.json["service"] == {"id": "claude", "name": "Claude"}
    ]
    assert events[0] == "alert.opened"
    assert "alert.resolved" in events
    assert set(events[1:]) <= {"alert.updated", "alert.resolved"}
    ids = [r.json["delivery_id"] for r in rig.receiver.received]
    assert len(ids) == len(set(ids))  # one request per delivery: no thread-reply duplicates
    last = rig.receiver.received[-1].json
    timestamps = last["timestamps"]
    assert isinstance(timestamps, dict)
    assert timestamps["duration_seconds"]


async def test_retries_on_5xx_and_timeouts_then_delivered_exactly_once(impatient_rig: Rig) -> None:
    rig = impatient_rig
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    rig.receiver.script.extend([503, "hang"])
    await rig.outage(minutes=30)
    await rig.drain(rounds=5)
    received = rig.receiver.received
    assert len(received) == 3  # 503, timeout, then 200
    assert len({r.json["delivery_id"] for r in received}) == 1  # the same delivery each time
    [delivery] = [d for d in await rig.deliveries() if d.action == "post"]
    assert (delivery.status, delivery.attempts) == ("done", 3)
    [target] = await rig.targets()
    assert target.enabled
    assert target.consecutive_failures == 0
    await rig.drain(rounds=2)
    assert len(rig.receiver.received) == 3  # nothing is sent twice once it was accepted


async def test_turned_off_after_repeated_permanent_failures_with_a_notice(fragile_rig: Rig) -> None:
    rig = fragile_rig
    for service in SERVICES:
        await rig.say("subscribe", service=service, webhook=rig.receiver.url())
    rig.receiver.script.extend([410, 404, 410])
    await rig.outage(minutes=30)
    await rig.drain(rounds=4)
    assert len(rig.receiver.received) == 3  # each failure is final for its delivery: no retry
    [target] = await rig.targets()
    assert not target.enabled
    assert target.consecutive_failures == 3
    assert "HTTP 410" in (target.disabled_reason or "")
    async with rig.deps.sessions() as session:
        subs = (
            await session.exec(select(SubscriptionRow).where(SubscriptionRow.platform == "webhook"))
        ).all()
    assert subs
    assert not any(s.enabled for s in subs)
    [notice] = rig.chat.calls
    assert (notice.channel.platform, notice.channel.channel_id) == ("test", "ops-room")
    assert notice.reply.title == "Webhook turned off"
    text = to_plain(notice.reply.body, rig.clock.now)
    assert "127.0.0.1" in text
    assert "3 failed deliveries in a row" in text
    assert HOOK not in text  # the path may hold the receiver's own secret
    listing = await rig.say("subscriptions")
    assert "turned off" in listing
    # The admin fixes the receiver and subscribes again: it is back on, with its old secret.
    again = await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    assert "whsec_" not in again
    [target] = await rig.targets()
    assert target.enabled
    assert target.consecutive_failures == 0


async def test_retries_used_up_count_as_a_failure(impatient_rig: Rig) -> None:
    rig = impatient_rig
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    rig.receiver.script.extend([500, 502, 503])
    await rig.outage(minutes=30)
    await rig.drain(rounds=4)
    assert len(rig.receiver.received) == 3
    [target] = await rig.targets()
    assert target.consecutive_failures == 1
    assert target.enabled
    assert "gave up after retries" in (target.last_error or "")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://loopback.test/hook",
        # The same rule as custom status pages: shared NAT and IPv6 forms embedding a private
        # IPv4 address (NAT64, 6to4, IPv4-compatible), and site-local.
        "http://100.64.0.1/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2002:a00:1::1]/hook",
        "http://[::10.0.0.1]/hook",
        "http://[fec0::1]/hook",
    ],
)
async def test_private_targets_are_refused_at_subscribe_time(strict_rig: Rig, url: str) -> None:
    strict_rig.names["loopback.test"] = "127.0.0.1"
    answer = await strict_rig.say("subscribe", service="claude", webhook=url)
    assert "private network" in answer
    assert await strict_rig.targets() == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/x", "https://"),
        ("https://user:pw@hooks.example.com/x", "user name"),
        ("https://nowhere.test/x", "does not resolve"),
        ("https:///nohost", "no host"),
    ],
)
async def test_malformed_targets_get_a_clear_answer(strict_rig: Rig, url: str, reason: str) -> None:
    answer = await strict_rig.say("subscribe", service="claude", webhook=url)
    assert reason in answer
    assert await strict_rig.targets() == []


async def test_a_name_repointed_to_loopback_is_refused_at_send_time(strict_rig: Rig) -> None:
    rig = strict_rig
    rig.names["hooks.partner.test"] = "93.184.216.34"  # public when subscribed...
    answer = await rig.say(
        "subscribe", service="claude", webhook=rig.receiver.url("hooks.partner.test")
    )
    assert "Webhook subscribed" in answer
    rig.names["hooks.partner.test"] = "127.0.0.1"  # ...then DNS points it at our own host
    await rig.outage(minutes=30)
    await rig.drain(rounds=2)
    assert rig.receiver.received == []  # the receiver on 127.0.0.1 was never contacted
    [delivery] = [d for d in await rig.deliveries() if d.action == "post"]
    assert delivery.status == "failed"
    assert "private network" in (delivery.last_error or "")
    [target] = await rig.targets()
    assert target.consecutive_failures == 1


async def test_the_request_goes_to_the_resolved_address(rig: Rig) -> None:
    """No real DNS: the name exists only in the injected resolver, and still arrives."""
    rig.names["hooks.partner.test"] = "127.0.0.1"
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url("hooks.partner.test"))
    await rig.outage(minutes=30)
    await rig.drain()
    [request] = rig.receiver.received
    assert request.headers["Host"] == f"hooks.partner.test:{rig.receiver.port}"


async def test_unsubscribe_removes_the_target_with_its_last_service(rig: Rig) -> None:
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    await rig.say("subscribe", service="gemini", webhook=rig.receiver.url())
    assert "no longer" in await rig.say("unsubscribe", service="claude", webhook=rig.receiver.url())
    assert len(await rig.targets()) == 1
    assert "was not" in await rig.say("unsubscribe", service="claude", webhook=rig.receiver.url())
    await rig.say("unsubscribe", service="gemini", webhook=rig.receiver.url())
    assert await rig.targets() == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "1e999", "soon", "http-date"])
async def test_a_receivers_bad_retry_after_delays_only_that_delivery(rig: Rig, value: str) -> None:
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    await rig.outage(minutes=30)
    if value == "http-date":
        value = format_datetime(rig.clock.now + timedelta(seconds=90), usegmt=True)
    rig.receiver.script.append((429, {"Retry-After": value}))
    await rig.worker.run_once()  # the round ends normally
    [delivery] = [d for d in await rig.deliveries() if d.action == "post"]
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    wait = delivery.next_attempt_at - rig.clock.now
    assert timedelta(0) <= wait <= timedelta(hours=1)
    if value.endswith("GMT"):
        assert wait == timedelta(seconds=90)
    rig.clock.now += wait + timedelta(seconds=1)
    await rig.worker.run_once()
    [delivery] = [d for d in await rig.deliveries() if d.action == "post"]
    assert delivery.status == "done"
    assert len(rig.receiver.received) == 2
