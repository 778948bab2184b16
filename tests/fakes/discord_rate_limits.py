"""Rate-limit headers on every answer of the fake Discord, as the real API sends them.

Discord names each route's bucket and counts it down on every response, not only on a 429
(developers/topics/rate-limits). The fake keeps ``Remaining`` high so that neither discord.py nor
`DiscordSender` ever waits in a test. Only the fake's own answers get them: a test that scripts
an error or a 429 (`FakeDiscord.fail`, `rate_limit`, `inject`) sends exactly the headers it chose.
"""

from __future__ import annotations

import hashlib
import re
import time

from aiohttp import web

LIMIT = 50
RESET_AFTER_SECONDS = 1.0
_MAJOR_OR_ID = re.compile(r"/(\d+)")


def add_rate_limit_headers(answer: web.StreamResponse, method: str, path: str) -> None:
    """Give ``answer`` the X-RateLimit-* headers of its route's bucket."""
    route = _MAJOR_OR_ID.sub("/{id}", path)
    bucket = hashlib.sha256(f"{method} {route}".encode()).hexdigest()[:32]
    reset = time.time() + RESET_AFTER_SECONDS  # an epoch time, as Discord sends it
    answer.headers.update(
        {
            "X-RateLimit-Limit": str(LIMIT),
            "X-RateLimit-Remaining": str(LIMIT - 1),
            "X-RateLimit-Reset": f"{reset:.3f}",
            "X-RateLimit-Reset-After": f"{RESET_AFTER_SECONDS:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
    )
