"""Discord's checks on message bodies, answered as Discord answers: 400, code 50035.

One validator for every body that makes or edits a message: channel messages, webhook
executes and edits (interaction follow-ups, the original response), interaction callbacks
(type 4/7 message data, type 8 autocomplete choices, type 9 modals) and forum posts.

Limits follow the Discord HTTP API v10 as published in discord/discord-api-spec,
specs/openapi.json at commit f84f72debb4de69654f02a706224faa1fbd98055 (the schema is named
beside each limit), and the developer documentation where the spec states none (marked
"docs"). Error codes and messages are Discord's own, and the error tree mirrors the body:
``{"embeds": {"0": {"description": {"_errors": [...]}}}}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SPEC_VERSION = "discord-api-spec openapi.json v10 @ f84f72debb4de69654f02a706224faa1fbd98055"
INVALID_FORM_BODY = 50035

# MessageCreateRequest.content says 4000, which is the Nitro sender's limit; a bot gets 2000
# (docs: Create Message).
CONTENT_LIMIT = 2000
EMBED_COUNT_LIMIT = 10  # MessageCreateRequest.embeds maxItems
NONCE_LIMIT = 25  # MessageCreateRequest.nonce string maxLength
ROW_COUNT_LIMIT = 5  # MessageCreateRequest.components maxItems
ROW_WIDTH = 5  # docs: an action row holds 5 buttons or 1 select menu
ATTACHMENT_COUNT_LIMIT = 10  # MessageCreateRequest.attachments maxItems
# docs, Embed Limits:
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_COUNT_LIMIT = 25
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_AUTHOR_LIMIT = 256
EMBED_TOTAL_LIMIT = 6000  # every embed of the message together
CUSTOM_ID_LIMIT = 100  # StringSelect.custom_id, ModalInteractionCallbackData.custom_id maxLength
BUTTON_LABEL_LIMIT = 80  # docs: Button Object
MODAL_TITLE_LIMIT = 45  # ModalInteractionCallbackData.title maxLength
MODAL_ROWS = (1, 5)  # ModalInteractionCallbackData.components minItems, maxItems
TEXT_INPUT_LABEL_LIMIT = 45  # docs: Text Input Structure
CHOICE_COUNT_LIMIT = 25  # docs: Autocomplete callback, max 25 choices
CHOICE_NAME_LIMIT = 100  # docs: Application Command Option Choice
CHOICE_VALUE_LIMIT = 100  # docs: Application Command Option Choice (string value)
THREAD_NAME = (1, 100)  # docs: Start Thread, name 1-100 characters

ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT = 1, 2, 3, 4
LINK_STYLE = 5
MESSAGE_CALLBACKS = (4, 7)  # CHANNEL_MESSAGE_WITH_SOURCE, UPDATE_MESSAGE
AUTOCOMPLETE_RESULT, MODAL = 8, 9

Errors = dict[str, Any]


def message_errors(body: Any, files: Iterable[str] = ()) -> Errors:
    """The error tree Discord returns for this message create/edit body ({} when it passes).

    ``files``: the multipart field names uploaded with it (``files[0]``, ...)."""
    errors: Errors = {}
    if not isinstance(body, dict):
        return errors
    content = body.get("content")
    if isinstance(content, str) and len(content) > CONTENT_LIMIT:
        _add(errors, ("content",), *_too_long(CONTENT_LIMIT))
    nonce = body.get("nonce")
    if nonce is not None and not isinstance(nonce, str | int):
        _add(
            errors, ("nonce",), "NONCE_TYPE_INVALID_TYPE", "This field must be a string or integer."
        )
    elif isinstance(nonce, str) and len(nonce) > NONCE_LIMIT:
        _add(errors, ("nonce",), "NONCE_TYPE_TOO_LONG", "Must be 25 or fewer characters long.")
    _embed_errors(errors, body.get("embeds") or [])
    _component_errors(errors, body.get("components") or [])
    _mention_errors(errors, body.get("allowed_mentions"))
    _attachment_errors(errors, body.get("attachments") or [], set(files))
    return errors


def callback_errors(body: Any, files: Iterable[str] = ()) -> Errors:
    """The error tree for an interaction callback body ({} when it passes)."""
    if not isinstance(body, dict):
        return {}
    kind, data = body.get("type"), body.get("data")
    if not isinstance(data, dict):
        return {}
    if kind in MESSAGE_CALLBACKS:
        nested = message_errors(data, files)
    elif kind == AUTOCOMPLETE_RESULT:
        nested = _choice_errors(data.get("choices") or [])
    elif kind == MODAL:
        nested = _modal_errors(data)
    else:
        nested = {}
    return {"data": nested} if nested else {}


def thread_name_errors(body: Any) -> Errors:
    """The error tree for a thread's (or forum post's) name ({} when it passes)."""
    errors: Errors = {}
    name = body.get("name") if isinstance(body, dict) else None
    low, high = THREAD_NAME
    if not isinstance(name, str) or not low <= len(name) <= high:
        _add(errors, ("name",), *_bad_length(low, high))
    return errors


def invalid_form_body(errors: Errors) -> dict[str, Any]:
    """Discord's 400 body around an error tree."""
    return {"message": "Invalid Form Body", "code": INVALID_FORM_BODY, "errors": errors}


def embed_total(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6,000 of a message's embeds."""
    fields = embed.get("fields") or []
    return (
        len(embed.get("title") or "")
        + len(embed.get("description") or "")
        + sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
        + len((embed.get("footer") or {}).get("text") or "")
        + len((embed.get("author") or {}).get("name") or "")
    )


def _embed_errors(errors: Errors, embeds: list[Any]) -> None:
    if len(embeds) > EMBED_COUNT_LIMIT:
        _add(errors, ("embeds",), *_too_long(EMBED_COUNT_LIMIT))
    running = 0
    for index, embed in enumerate(embeds):
        at = ("embeds", str(index))
        for key, limit in (("title", EMBED_TITLE_LIMIT), ("description", EMBED_DESCRIPTION_LIMIT)):
            if len(embed.get(key) or "") > limit:
                _add(errors, (*at, key), *_too_long(limit))
        if len((embed.get("footer") or {}).get("text") or "") > EMBED_FOOTER_LIMIT:
            _add(errors, (*at, "footer", "text"), *_too_long(EMBED_FOOTER_LIMIT))
        if len((embed.get("author") or {}).get("name") or "") > EMBED_AUTHOR_LIMIT:
            _add(errors, (*at, "author", "name"), *_too_long(EMBED_AUTHOR_LIMIT))
        fields = embed.get("fields") or []
        if len(fields) > EMBED_FIELD_COUNT_LIMIT:
            _add(errors, (*at, "fields"), *_too_long(EMBED_FIELD_COUNT_LIMIT))
        for number, item in enumerate(fields):
            for key, limit in (
                ("name", EMBED_FIELD_NAME_LIMIT),
                ("value", EMBED_FIELD_VALUE_LIMIT),
            ):
                if len(item.get(key) or "") > limit:
                    _add(errors, (*at, "fields", str(number), key), *_too_long(limit))
        before, running = running, running + embed_total(embed)
        if running > EMBED_TOTAL_LIMIT >= before:  # the embed that crosses the line is blamed
            _add(errors, at, "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _component_errors(errors: Errors, rows: list[Any]) -> None:
    if len(rows) > ROW_COUNT_LIMIT:
        _add(errors, ("components",), *_too_long(ROW_COUNT_LIMIT))
    seen: set[str] = set()
    for row_index, row in enumerate(rows):
        at = ("components", str(row_index))
        items = row.get("components") or []
        if row.get("type") != ACTION_ROW:
            _add(errors, (*at, "type"), "COMPONENT_TYPE_INVALID", "Value must be an action row.")
            continue
        if not 1 <= len(items) <= ROW_WIDTH:
            _add(errors, (*at, "components"), *_bad_length(1, ROW_WIDTH))
        elif any(c.get("type") == STRING_SELECT for c in items) and len(items) > 1:
            _add(
                errors,
                (*at, "components", "1"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        for index, component in enumerate(items):
            _one_component(errors, (*at, "components", str(index)), component, seen)


def _one_component(
    errors: Errors, at: tuple[str, ...], component: dict[str, Any], seen: set[str]
) -> None:
    custom_id = component.get("custom_id")
    if component.get("type") == BUTTON:
        label = component.get("label")
        if isinstance(label, str) and len(label) > BUTTON_LABEL_LIMIT:
            _add(errors, (*at, "label"), *_too_long(BUTTON_LABEL_LIMIT))
        link = component.get("style") == LINK_STYLE
        if (link and custom_id is not None) or (not link and component.get("url")):
            _add(
                errors,
                (*at, "custom_id" if link else "url"),
                "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
                "A custom id and url cannot both be specified",
            )
        if link:
            if not component.get("url"):
                _add(errors, (*at, "url"), "BASE_TYPE_REQUIRED", "This field is required")
            return
        if not custom_id:
            _add(
                errors,
                (*at, "custom_id"),
                "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
                "A custom id is required",
            )
            return
    if not isinstance(custom_id, str):
        return
    if len(custom_id) > CUSTOM_ID_LIMIT:
        _add(errors, (*at, "custom_id"), *_too_long(CUSTOM_ID_LIMIT))
    if custom_id in seen:
        _add(
            errors,
            (*at, "custom_id"),
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    seen.add(custom_id)


def _mention_errors(errors: Errors, allowed: Any) -> None:
    if not isinstance(allowed, dict):
        return
    parse = allowed.get("parse") or []
    for kind in ("users", "roles"):
        if kind in parse and allowed.get(kind):
            _add(
                errors,
                ("allowed_mentions",),
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )


def _attachment_errors(errors: Errors, attachments: list[Any], uploaded: set[str]) -> None:
    # An attachment names its upload by id: {"id": 0} is the multipart part "files[0]".
    # (On an edit, ids of attachments the message already has are kept; the fake stores none.)
    if len(attachments) > ATTACHMENT_COUNT_LIMIT:
        _add(errors, ("attachments",), *_too_long(ATTACHMENT_COUNT_LIMIT))
    for index, attachment in enumerate(attachments):
        if f"files[{attachment.get('id')}]" not in uploaded:
            _add(
                errors,
                ("attachments", str(index)),
                "ATTACHMENT_NOT_FOUND",
                "Attachment data not found",
            )


def _choice_errors(choices: list[Any]) -> Errors:
    errors: Errors = {}
    if len(choices) > CHOICE_COUNT_LIMIT:
        _add(errors, ("choices",), *_too_long(CHOICE_COUNT_LIMIT))
    for index, choice in enumerate(choices):
        for key, limit in (("name", CHOICE_NAME_LIMIT), ("value", CHOICE_VALUE_LIMIT)):
            value = choice.get(key)
            if isinstance(value, str) and not 1 <= len(value) <= limit:
                _add(errors, ("choices", str(index), key), *_bad_length(1, limit))
    return errors


def _modal_errors(data: dict[str, Any]) -> Errors:
    errors: Errors = {}
    if len(data.get("custom_id") or "") > CUSTOM_ID_LIMIT:
        _add(errors, ("custom_id",), *_too_long(CUSTOM_ID_LIMIT))
    if len(data.get("title") or "") > MODAL_TITLE_LIMIT:
        _add(errors, ("title",), *_too_long(MODAL_TITLE_LIMIT))
    rows = data.get("components") or []
    low, high = MODAL_ROWS
    if not low <= len(rows) <= high:
        _add(errors, ("components",), *_bad_length(low, high))
    seen: set[str] = set()
    for row_index, row in enumerate(rows):
        for index, item in enumerate(row.get("components") or []):
            at = ("components", str(row_index), "components", str(index))
            label = item.get("label") or ""
            if item.get("type") == TEXT_INPUT and len(label) > TEXT_INPUT_LABEL_LIMIT:
                _add(errors, (*at, "label"), *_too_long(TEXT_INPUT_LABEL_LIMIT))
            _one_component(errors, at, item, seen)
    return errors


def _too_long(limit: int) -> tuple[str, str]:
    return "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."


def _bad_length(low: int, high: int) -> tuple[str, str]:
    return "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."


def _add(errors: Errors, path: tuple[str, ...], code: str, message: str) -> None:
    node = errors
    for key in path:
        node = node.setdefault(key, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})
