"""A resolver for `AddressPolicy` that knows only the names a test gives it: no real DNS."""

from __future__ import annotations


class FakeDns:
    """Each name answers its queued answers in turn, then keeps repeating the last one."""

    def __init__(self) -> None:
        self._answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def point(self, host: str, *answers: str) -> None:
        """`host` resolves to each of `answers` in turn (one address per lookup)."""
        self._answers[host] = [[answer] for answer in answers]

    async def resolve(self, host: str, port: int) -> list[str]:
        """The resolver: records the lookup; an unknown name does not resolve."""
        self.lookups.append(host)
        queue = self._answers.get(host)
        if not queue:
            raise OSError("no such host (the fake DNS knows only its names)")
        return queue.pop(0) if len(queue) > 1 else queue[0]
