"""Reading a request body up to a cap.

``request.content.read(n)`` answers with whatever is buffered (at least one byte), not with n
bytes: a body that arrives in several TCP segments would be cut short. This reads until the end
of the body or one byte past the cap, whichever comes first, so a caller sees the whole body or
learns it is too large without ever holding more than ``cap + 1`` bytes.
"""

from __future__ import annotations

from aiohttp import web


async def read_capped(request: web.Request, cap: int) -> bytes | None:
    """The whole body, or None when it is longer than ``cap`` bytes (answer 413)."""
    if request.content_length is not None and request.content_length > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = await request.content.read(cap + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > cap else b"".join(chunks)
