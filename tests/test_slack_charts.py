"""Charts on Slack: an image block served by the bot when PUBLIC_URL is set, a file upload
(files_upload_v2 against the fake) otherwise."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.adapters.slack.charts import ChartCache
from bot.core.commands import CommandSpec, Context, Reply
from bot.core.rich import rich
from bot.services.deps import AppDeps
from tests.conftest import FakeClock
from tests.fakes.slack_server import Failure, FakeSlack
from tests.slack_harness import Harness, start_harness

PUBLIC = "https://bot.example.com"


def tiny_png() -> bytes:
    """A valid 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = tiny_png()


def add_chart_command(bot: Harness, *, ephemeral: bool = False) -> None:
    async def chart(ctx: Context[AppDeps]) -> Reply:
        return Reply(
            title="OpenAI: last 24 hours",
            body=rich("Error rate by hour."),
            image_png=PNG,
            image_alt="Error rate, 24 hours",
            ephemeral=ephemeral,
        )

    bot.adapter.app._deps.registry.add(CommandSpec(name="chart", description="c", handler=chart))


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def test_with_a_public_url_the_chart_is_an_image_block_the_bot_serves(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack, public_url=PUBLIC + "/"):
        add_chart_command(bot)
        response = await bot.command("chart")
        [image] = [b for b in response["blocks"] if b["type"] == "image"]
        name = hashlib.sha256(PNG).hexdigest() + ".png"
        assert image == {
            "type": "image",
            "image_url": f"{PUBLIC}/charts/{name}",
            "alt_text": "Error rate, 24 hours",
        }
        assert not slack.calls_to("files.getUploadURLExternal")
        # What Slack fetches through PUBLIC_URL (here: the bot's own server, directly).
        local = bot.url.removesuffix("/slack/events")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{local}/charts/{name}") as served:
                assert served.status == 200
                assert served.content_type == "image/png"
                assert await served.read() == PNG
            async with http.get(f"{local}/charts/{'0' * 64}.png") as missing:
                assert missing.status == 404
            async with http.get(f"{local}/charts/..%2Fsecrets.png") as odd:
                assert odd.status == 404


async def test_without_a_public_url_the_chart_is_uploaded_to_the_channel(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack):
        add_chart_command(bot)
        response = await bot.command("chart")
        assert all(b["type"] != "image" for b in response["blocks"])
        await slack.wait_until(lambda: any(u.completed for u in slack.uploads.values()))
        [upload] = slack.uploads.values()
        assert upload.data == PNG
        assert (upload.filename, upload.channel) == ("chart.png", "C111")
        assert upload.title == "Error rate, 24 hours"
        [request] = slack.calls_to("files.getUploadURLExternal")
        assert request.token == "xoxb-test-token"
        assert int(request.params["length"]) == len(PNG)


async def test_a_private_answer_never_uploads_its_chart_for_the_whole_channel(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack):
        add_chart_command(bot, ephemeral=True)
        response = await bot.command("chart")
        assert response["response_type"] == "ephemeral"
        assert not slack.calls_to("files.getUploadURLExternal")


async def test_a_refused_upload_still_leaves_the_answer(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack):
        add_chart_command(bot)
        slack.fail("files.getUploadURLExternal", Failure(error="not_in_channel"))
        response = await bot.command("chart")
        assert "Error rate by hour" in str(response["blocks"])
        assert not slack.calls_to("files.completeUploadExternal")


def test_the_chart_cache_is_bounded_and_content_addressed() -> None:
    cache = ChartCache(max_items=2, max_bytes=10_000)
    first = cache.put(b"one")
    assert cache.put(b"one") == first  # the same bytes, the same name
    cache.put(b"two")
    cache.put(b"three")
    assert cache.get(first) is None  # the oldest went
    assert cache.get(hashlib.sha256(b"three").hexdigest() + ".png") == b"three"
    by_size = ChartCache(max_items=10, max_bytes=5)
    dropped = by_size.put(b"1234")
    kept = by_size.put(b"5678")  # 8 bytes in all: over the budget, the older goes
    assert by_size.get(dropped) is None
    assert by_size.get(kept) == b"5678"
