"""What real Slack refuses in a message or a modal, checked with slack_sdk's own Block Kit models.

The fake Slack answers these the way Slack words them: ``invalid_blocks`` with ``errors`` and
``response_metadata.messages`` that point at the bad part (``[json-pointer:/blocks/0/text]``),
``invalid_metadata_*`` for message metadata, ``invalid_arguments`` for a bad modal view.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_BLOCKS = 50
"""Slack's limit for one message (a modal allows 100)."""
MAX_MODAL_BLOCKS = 100
BOT_TOKEN_PREFIXES = ("xoxb-", "xoxp-")
NO_TOKEN_METHODS = frozenset({"oauth.v2.access"})
"""Methods that authenticate with the client id and secret instead of a token."""


def refusal(error: str, messages: list[str]) -> dict[str, Any]:
    """Slack's answer shape: the error code, ``errors`` and ``[ERROR]``-prefixed messages."""
    return {
        "ok": False,
        "error": error,
        "errors": messages,
        "response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]},
    }


def block_problems(blocks: Any, pointer: str = "/blocks", limit: int = MAX_BLOCKS) -> list[str]:
    """Each reason Slack would give for refusing these blocks (empty when they are fine)."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{pointer}]"]
    if len(blocks) > limit:
        return [f"no more than {limit} items allowed [json-pointer:{pointer}]"]
    problems: list[str] = []
    action_ids: set[str] = set()
    for b, raw in enumerate(blocks):
        where = f"{pointer}/{b}"
        if not isinstance(raw, dict):
            problems.append(f"must provide an object [json-pointer:{where}]")
            continue
        parsed = Block.parse(raw)
        if parsed is None:
            problems.append(f"failed to match all allowed schemas [json-pointer:{where}]")
            continue
        try:
            parsed.validate_json()
        except SlackObjectFormationError as exc:
            problems.append(f"{exc} [json-pointer:{where}]")
        problems.extend(_empty_texts(raw, where))
        for e, element in enumerate(raw.get("elements") or []):
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if action_id is None:
                continue
            if action_id in action_ids:
                problems.append(
                    f"duplicate action_id [json-pointer:{where}/elements/{e}/action_id]"
                )
            action_ids.add(action_id)
    return problems


def _empty_texts(value: Any, where: str) -> list[str]:
    # slack_sdk lets an empty text object through; Slack does not.
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _empty_texts(item, f"{where}/{i}")]
    if not isinstance(value, dict):
        return []
    if value.get("type") in {"plain_text", "mrkdwn"} and not value.get("text"):
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    return [p for key, item in value.items() for p in _empty_texts(item, f"{where}/{key}")]


def message_refusal(params: dict[str, Any]) -> dict[str, Any] | None:
    """chat.postMessage / chat.update / chat.postEphemeral: Slack's error answer, or None."""
    if not params.get("channel"):
        return {"ok": False, "error": "channel_not_found"}
    blocks = _decoded(params.get("blocks"))
    if blocks is None and not params.get("text"):
        return {"ok": False, "error": "no_text"}
    if blocks is not None and (problems := block_problems(blocks)):
        return refusal("invalid_blocks", problems)
    if len(str(params.get("text") or "")) > 40_000:
        return {"ok": False, "error": "msg_too_long"}
    return metadata_refusal(params.get("metadata"))


def metadata_refusal(raw: Any) -> dict[str, Any] | None:
    """Message metadata must be ``{"event_type": str, "event_payload": object}``."""
    if raw is None:
        return None
    try:
        metadata = _decoded(raw)
    except json.JSONDecodeError:
        return {"ok": False, "error": "invalid_metadata_format"}
    if not isinstance(metadata, dict):
        return {"ok": False, "error": "invalid_metadata_format"}
    event_type = metadata.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        return refusal("invalid_metadata_schema", ["missing event_type [json-pointer:/metadata]"])
    if not isinstance(metadata.get("event_payload"), dict):
        return refusal(
            "invalid_metadata_schema", ["must be an object [json-pointer:/metadata/event_payload]"]
        )
    return None


def view_refusal(raw: Any) -> dict[str, Any] | None:
    """views.open: a modal slack_sdk's View model and Slack's block rules accept, or the error."""
    try:
        view = _decoded(raw)
    except json.JSONDecodeError:
        return refusal("invalid_arguments", ["invalid json [json-pointer:/view]"])
    if not isinstance(view, dict):
        return refusal("invalid_arguments", ["must provide an object [json-pointer:/view]"])
    problems = block_problems(view.get("blocks"), "/view/blocks", MAX_MODAL_BLOCKS)
    try:
        View(**view).validate_json()
    except (SlackObjectFormationError, TypeError) as exc:
        problems.append(f"{exc} [json-pointer:/view]")
    return refusal("invalid_arguments", problems) if problems else None


def token_refusal(method: str, token: str | None, revoked: set[str]) -> dict[str, Any] | None:
    """Slack's answer to a call with a missing, wrong-kind or revoked token, or None."""
    if method in NO_TOKEN_METHODS:
        return None
    if not token:
        return {"ok": False, "error": "not_authed"}
    if token in revoked:
        return {"ok": False, "error": "token_revoked"}
    if method == "apps.connections.open":  # only an app-level token opens a socket
        return (
            None if token.startswith("xapp-") else {"ok": False, "error": "not_allowed_token_type"}
        )
    return None if token.startswith(BOT_TOKEN_PREFIXES) else {"ok": False, "error": "invalid_auth"}


def history_page(
    items: list[dict[str, Any]], params: dict[str, Any], page_size: int | None
) -> dict[str, Any]:
    """One page of ``limit`` (default 100, at most 999) from ``cursor`` on, as Slack pages.

    ``page_size`` makes pages shorter than asked, which Slack may do before the end too.
    """
    limit = min(int(params.get("limit") or 100), 999)
    if page_size is not None:
        limit = min(limit, page_size)
    cursor = str(params.get("cursor") or "")
    try:
        start = int(base64.b64decode(cursor).decode().removeprefix("next:")) if cursor else 0
    except ValueError:
        return {"ok": False, "error": "invalid_cursor"}
    has_more = start + limit < len(items)
    next_cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if has_more else ""
    return {
        "ok": True,
        "messages": items[start : start + limit],
        "has_more": has_more,
        "response_metadata": {"next_cursor": next_cursor},
    }


TRIGGER_LIFETIME = 3.0
"""Seconds a trigger_id can open a modal, from the interaction that carried it."""
RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60.0


@dataclass(slots=True)
class Lifetimes:
    """trigger_ids (one modal within 3 s) and response_urls (5 answers within 30 minutes)."""

    triggers: dict[str, float | None] = field(default_factory=dict)
    """trigger_id → when Slack issued it (None once a modal used it)."""
    hooks: dict[str, tuple[float, int]] = field(default_factory=dict)
    """response_url name → (when it was issued, answers so far)."""

    def issue_trigger(self, trigger: str, now: float) -> None:
        self.triggers[trigger] = now

    def knows_trigger(self, trigger: str) -> bool:
        return trigger in self.triggers

    def trigger_error(self, trigger: str, now: float) -> str | None:
        """Slack's error for opening a modal with this trigger now, or None."""
        if not trigger:
            return "invalid_arguments"
        if trigger not in self.triggers:  # a literal id in a test's payload is trusted
            return None
        issued = self.triggers[trigger]
        if issued is None:
            return "exchanged_trigger_id"
        return "expired_trigger_id" if now - issued > TRIGGER_LIFETIME else None

    def use_trigger(self, trigger: str) -> None:
        if trigger in self.triggers:
            self.triggers[trigger] = None

    def issue_hook(self, name: str, now: float) -> None:
        self.hooks.setdefault(name, (now, 0))

    def use_hook(self, name: str, now: float) -> str | None:
        """Count one answer to a response_url; Slack's 404 body when it takes no more."""
        issued, uses = self.hooks.get(name, (now, 0))
        if now - issued > RESPONSE_URL_LIFETIME:
            return "expired_url"
        if uses >= RESPONSE_URL_USES:
            return "used_url"
        self.hooks[name] = (issued, uses + 1)
        return None


def _decoded(value: Any) -> Any:
    # Form-encoded calls carry JSON fields as strings; JSON calls carry them as they are.
    return json.loads(value) if isinstance(value, str) else value
