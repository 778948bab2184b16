"""Salted hashes of user ids: enough to count a user once, not enough to name them.

The salt is 32 random bytes created on first use and kept in the database (`instance_secrets`),
so every process of a deployment — several against one PostgreSQL — hashes a user the same way,
and the shared workaround database never holds a platform user id.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.community_models import InstanceSecretRow

SALT_NAME = "user-hash-salt"
SALT_BYTES = 32


def user_hash(platform: str, user_id: str, *, salt: bytes) -> str:
    """HMAC-SHA256 of ``platform:user_id`` under the deployment's salt, as 64 hex characters."""
    message = f"{platform}:{user_id}".encode()
    return hmac.new(salt, message, hashlib.sha256).hexdigest()


async def load_or_create_salt(*, session: AsyncSession, now: datetime) -> bytes:
    """The deployment's salt; the first caller creates it (a concurrent creator wins, once)."""
    row = await session.get(InstanceSecretRow, SALT_NAME)
    if row is not None:
        return bytes.fromhex(row.value)
    fresh = os.urandom(SALT_BYTES)
    try:
        async with session.begin_nested():
            session.add(InstanceSecretRow(name=SALT_NAME, value=fresh.hex(), created_at=now))
    except IntegrityError:  # another process created it between our read and our write
        row = await session.get(InstanceSecretRow, SALT_NAME, populate_existing=True)
        if row is None:
            raise
        return bytes.fromhex(row.value)
    return fresh
