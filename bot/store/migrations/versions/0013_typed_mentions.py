"""typed mentions: subscriptions store "role:123" / "subteam:S1" / "here" instead of markup

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

Before, ``subscriptions.mention_role`` held what /subscribe received (``<@&123>``,
``<!subteam^S1>``), which the Discord renderer could not read. Each row is converted to the
canonical form `bot.core.mention.Mention.stored` writes; a value that names no mention is
cleared, with a log line, so that channel's alerts are posted without a ping rather than not
at all. The patterns are copied here on purpose: a migration must not change with the code.
"""

import logging
import re
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

_LEGACY = (
    (re.compile(r"^(?:<@&(\d{5,25})>|(\d{5,25}))$"), "role:{}"),
    (
        re.compile(r"^(?:<!subteam\^(S[A-Z0-9]{2,30})(?:\|[^>]*)?>|(S[A-Z0-9]{2,30}))$"),
        "subteam:{}",
    ),
)
_CANONICAL = re.compile(r"^(?:role:\d{5,25}|subteam:S[A-Z0-9]{2,30}|here|channel)$")
_MARKUP = {"role": "<@&{}>", "subteam": "<!subteam^{}>"}

_subscriptions = sa.table(
    "subscriptions", sa.column("id", sa.Integer), sa.column("mention_role", sa.String)
)


def canonical(value: str) -> str | None:
    """The canonical form of a stored legacy value, or None when it names no mention."""
    value = value.strip()
    if _CANONICAL.match(value):
        return value
    for pattern, template in _LEGACY:
        if match := pattern.match(value):
            return template.format(match.group(1) or match.group(2))
    return None


def _rewrite(convert: Callable[[str], str | None]) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_subscriptions.c.id, _subscriptions.c.mention_role).where(
            _subscriptions.c.mention_role.is_not(None)
        )
    ).all()
    for row_id, value in rows:
        new = convert(value)
        if new == value:
            continue
        if new is None:
            log.warning("subscription %s: mention %r names no role; cleared", row_id, value[:100])
        bind.execute(
            sa.update(_subscriptions).where(_subscriptions.c.id == row_id).values(mention_role=new)
        )


def _markup(value: str) -> str | None:
    kind, _, ident = value.partition(":")
    template = _MARKUP.get(kind)
    # The old code knew no @here or @channel: those become no mention.
    return template.format(ident) if template and ident else None


def upgrade() -> None:
    _rewrite(canonical)


def downgrade() -> None:
    _rewrite(_markup)
