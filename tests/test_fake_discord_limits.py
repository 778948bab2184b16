"""The fake Discord refuses what Discord refuses, with Discord's code, message and field path."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.discord_form_body import (
    SPEC_VERSION,
    callback_errors,
    message_errors,
    thread_name_errors,
)
from tests.fakes.discord_server import CHANNEL_ID, FORUM_CHANNEL_ID, FakeDiscord


def leaves(tree: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """("a.0.b", code) for every error in a Discord error tree."""
    for key, value in tree.items():
        if key == "_errors":
            for error in value:
                yield ".".join(path), error["code"]
        else:
            yield from leaves(value, (*path, key))


def button(custom_id: str, label: str = "Ack") -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": label, "custom_id": custom_id}


def row(*items: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(items)}


def embed(**fields: Any) -> dict[str, Any]:
    return {"title": "t", **fields}


MAX_LENGTH = "BASE_TYPE_MAX_LENGTH"
TOO_BIG = [
    ({"content": "x" * 2001}, "content", MAX_LENGTH),
    ({"embeds": [embed()] * 11}, "embeds", MAX_LENGTH),
    ({"embeds": [embed(title="x" * 257)]}, "embeds.0.title", MAX_LENGTH),
    ({"embeds": [embed(description="x" * 4097)]}, "embeds.0.description", MAX_LENGTH),
    ({"embeds": [embed(fields=[{"name": "n", "value": "v"}] * 26)]}, "embeds.0.fields", MAX_LENGTH),
    (
        {"embeds": [embed(fields=[{"name": "n" * 257, "value": "v"}])]},
        "embeds.0.fields.0.name",
        MAX_LENGTH,
    ),
    (
        {"embeds": [embed(fields=[{"name": "n", "value": "v" * 1025}])]},
        "embeds.0.fields.0.value",
        MAX_LENGTH,
    ),
    ({"embeds": [embed(footer={"text": "x" * 2049})]}, "embeds.0.footer.text", MAX_LENGTH),
    ({"embeds": [embed(author={"name": "x" * 257})]}, "embeds.0.author.name", MAX_LENGTH),
    (
        {"embeds": [{"description": "x" * 4096, "footer": {"text": "y" * 1905}}]},
        "embeds.0",
        "MAX_EMBED_SIZE_EXCEEDED",
    ),
    (  # the 6,000 count every embed of the message together
        {"embeds": [{"description": "x" * 4000}, {"description": "y" * 2001}]},
        "embeds.1",
        "MAX_EMBED_SIZE_EXCEEDED",
    ),
    ({"components": [row(button(f"b{i}")) for i in range(6)]}, "components", MAX_LENGTH),
    (
        {"components": [row(*(button(f"b{i}") for i in range(6)))]},
        "components.0.components",
        "BASE_TYPE_BAD_LENGTH",
    ),
    (
        {"components": [row(button("x" * 101))]},
        "components.0.components.0.custom_id",
        MAX_LENGTH,
    ),
    (
        {"components": [row(button("a")), row(button("b"), button("a"))]},
        "components.1.components.1.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
    ),
    (
        {"components": [row(button("a", label="x" * 81))]},
        "components.0.components.0.label",
        MAX_LENGTH,
    ),
    (
        {"components": [row({"type": 2, "style": 5, "url": "https://x.test", "custom_id": "a"})]},
        "components.0.components.0.custom_id",
        "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
    ),
    (
        {"components": [row({"type": 2, "style": 1, "label": "no id"})]},
        "components.0.components.0.custom_id",
        "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
    ),
    (
        {"allowed_mentions": {"parse": ["roles"], "roles": ["1"]}},
        "allowed_mentions",
        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
    ),
    ({"nonce": "n" * 26}, "nonce", "NONCE_TYPE_TOO_LONG"),
    ({"attachments": [{"id": 1, "filename": "a.png"}]}, "attachments.0", "ATTACHMENT_NOT_FOUND"),
]


@pytest.mark.parametrize(("body", "path", "code"), TOO_BIG, ids=[p for _, p, _ in TOO_BIG])
def test_each_limit_is_refused_at_its_field_path(
    body: dict[str, Any], path: str, code: str
) -> None:
    assert list(leaves(message_errors(body, files=("files[0]",)))) == [(path, code)]


def test_a_body_at_every_limit_passes() -> None:
    full_embed = {
        "title": "t" * 256,
        "description": "d" * 4096,
        "fields": [{"name": "n", "value": "v"}] * 25,
        "footer": {"text": "f" * 1597},  # 6,000 in all
        "author": {"name": "a"},
    }
    body = {
        "content": "c" * 2000,
        "nonce": "n" * 25,
        "embeds": [full_embed],
        "components": [
            row(*(button(f"r{r}b{i}" + "x" * 94, "l" * 80) for i in range(5))) for r in range(5)
        ],
        "allowed_mentions": {"parse": ["users"], "roles": ["1"]},
        "attachments": [{"id": 0, "filename": "chart.png"}],
    }
    assert list(leaves(message_errors(body, files=("files[0]",)))) == []
    assert "f84f72debb4de69654f02a706224faa1fbd98055" in SPEC_VERSION


def test_the_error_message_is_discords() -> None:
    errors = message_errors({"embeds": [embed(description="x" * 4097)]})
    assert errors == {
        "embeds": {
            "0": {
                "description": {
                    "_errors": [
                        {
                            "code": "BASE_TYPE_MAX_LENGTH",
                            "message": "Must be 4096 or fewer in length.",
                        }
                    ]
                }
            }
        }
    }


CALLBACKS = [
    ({"type": 4, "data": {"content": "x" * 2001}}, "data.content", MAX_LENGTH),
    (
        {"type": 7, "data": {"components": [row(button("a"), button("a"))]}},
        "data.components.0.components.1.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
    ),
    (
        {"type": 8, "data": {"choices": [{"name": "n", "value": "v"}] * 26}},
        "data.choices",
        MAX_LENGTH,
    ),
    (
        {"type": 8, "data": {"choices": [{"name": "n" * 101, "value": "v"}]}},
        "data.choices.0.name",
        "BASE_TYPE_BAD_LENGTH",
    ),
    (
        {"type": 8, "data": {"choices": [{"name": "n", "value": "v" * 101}]}},
        "data.choices.0.value",
        "BASE_TYPE_BAD_LENGTH",
    ),
    (
        {"type": 9, "data": {"custom_id": "m", "title": "t" * 46, "components": [row()]}},
        "data.title",
        MAX_LENGTH,
    ),
    (
        {"type": 9, "data": {"custom_id": "m" * 101, "title": "t", "components": [row()]}},
        "data.custom_id",
        MAX_LENGTH,
    ),
    (
        {"type": 9, "data": {"custom_id": "m", "title": "t", "components": [row()] * 6}},
        "data.components",
        "BASE_TYPE_BAD_LENGTH",
    ),
]


@pytest.mark.parametrize(("body", "path", "code"), CALLBACKS, ids=[p for _, p, _ in CALLBACKS])
def test_interaction_callbacks_are_checked(body: dict[str, Any], path: str, code: str) -> None:
    assert list(leaves(callback_errors(body))) == [(path, code)]


def test_thread_names_are_one_to_a_hundred_characters() -> None:
    assert thread_name_errors({"name": "ok"}) == {}
    assert list(leaves(thread_name_errors({"name": "x" * 101}))) == [
        ("name", "BASE_TYPE_BAD_LENGTH")
    ]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeDiscord, aiohttp.ClientSession]]:
    async with FakeDiscord() as discord, aiohttp.ClientSession() as http:
        yield discord, http


async def call(
    http: aiohttp.ClientSession, discord: FakeDiscord, method: str, path: str, body: Any
) -> tuple[int, Any]:
    async with http.request(method, discord.api_base + path, json=body) as answer:
        return answer.status, await answer.json()


TOO_LONG = {"content": "x" * 2001}
EVERY_ROUTE = [
    (f"/channels/{CHANNEL_ID}/messages", TOO_LONG, "content"),
    ("/webhooks/1/tok", TOO_LONG, "content"),  # an interaction follow-up
    ("/interactions/1/tok/callback", {"type": 4, "data": TOO_LONG}, "data.content"),
    (
        f"/channels/{FORUM_CHANNEL_ID}/threads",
        {"name": "p", "message": TOO_LONG},
        "message.content",
    ),
]


@pytest.mark.parametrize(("path", "body", "where"), EVERY_ROUTE)
async def test_every_route_that_makes_a_message_answers_50035(
    fake: tuple[FakeDiscord, aiohttp.ClientSession], path: str, body: Any, where: str
) -> None:
    discord, http = fake
    status, answer = await call(http, discord, "POST", path, body)
    assert status == 400
    assert answer["code"] == 50035
    assert answer["message"] == "Invalid Form Body"
    assert list(leaves(answer["errors"])) == [(where, MAX_LENGTH)]


async def test_edits_are_checked_too(fake: tuple[FakeDiscord, aiohttp.ClientSession]) -> None:
    discord, http = fake
    status, sent = await call(
        http, discord, "POST", f"/channels/{CHANNEL_ID}/messages", {"content": "hi"}
    )
    assert status == 200
    too_long = {"embeds": [embed(title="x" * 257)]}
    edit = f"/channels/{CHANNEL_ID}/messages/{sent['id']}"
    assert (await call(http, discord, "PATCH", edit, too_long))[0] == 400
    await call(http, discord, "POST", "/webhooks/1/tok", {"content": "follow-up"})
    status, answer = await call(
        http, discord, "PATCH", "/webhooks/1/tok/messages/@original", too_long
    )
    assert status == 400
    assert list(leaves(answer["errors"])) == [("embeds.0.title", MAX_LENGTH)]


async def test_an_attachment_must_name_an_uploaded_file(
    fake: tuple[FakeDiscord, aiohttp.ClientSession],
) -> None:
    discord, http = fake

    async def upload(attachment_id: int) -> int:
        form = aiohttp.FormData()
        payload = {"attachments": [{"id": attachment_id, "filename": "chart.png"}]}
        form.add_field("payload_json", json.dumps(payload), content_type="application/json")
        form.add_field("files[0]", b"png", filename="chart.png", content_type="image/png")
        url = f"{discord.api_base}/channels/{CHANNEL_ID}/messages"
        async with http.post(url, data=form) as answer:
            return answer.status

    assert await upload(0) == 200
    assert await upload(1) == 400


async def test_listings_carry_no_nonce_but_the_create_answer_does(
    fake: tuple[FakeDiscord, aiohttp.ClientSession],
) -> None:
    discord, http = fake
    path = f"/channels/{CHANNEL_ID}/messages"
    _, created = await call(http, discord, "POST", path, {"content": "hi", "nonce": "n1"})
    assert created["nonce"] == "n1"
    _, listed = await call(http, discord, "GET", path + "?limit=10", None)
    _, one = await call(http, discord, "GET", f"{path}/{created['id']}", None)
    assert [m["id"] for m in listed] == [created["id"]]
    assert "nonce" not in listed[0]
    assert "nonce" not in one


async def test_a_message_gets_one_thread_only(
    fake: tuple[FakeDiscord, aiohttp.ClientSession],
) -> None:
    discord, http = fake
    _, sent = await call(
        http, discord, "POST", f"/channels/{CHANNEL_ID}/messages", {"content": "hi"}
    )
    path = f"/channels/{CHANNEL_ID}/messages/{sent['id']}/threads"
    first, _ = await call(http, discord, "POST", path, {"name": "updates"})
    second, answer = await call(http, discord, "POST", path, {"name": "updates"})
    assert first == 201
    assert (second, answer) == (
        400,
        {"code": 160004, "message": "A thread has already been created for this message"},
    )
