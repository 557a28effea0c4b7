"""uvicorn's HTTP/1.1 protocol with a deadline for a request's headers.

uvicorn closes a kept-alive connection that sends nothing, but not one that never finishes its headers: a
client can open connections, trickle header bytes and hold each one forever, until the connection limit turns
everyone else away (a "slow loris"). Here every connection must complete each request's headers within
HEADER_TIMEOUT_S of connecting or of its previous response; the body has its own deadline in the app.

Built on uvicorn's h11 protocol class, which is not a documented extension point: where it lacks what this
needs, `protocol()` answers "h11" and uvicorn runs unchanged (the app's own limits still hold).
"""
from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0


class HeaderDeadlineProtocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        previous = getattr(self, "_header_deadline", None)
        if previous is not None:
            previous.cancel()
        self._header_deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_late)

    def _headers_late(self) -> None:
        # IDLE: no request has got as far as complete headers since the deadline was armed.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol() -> type[asyncio.Protocol] | str:
    """The guarded protocol where uvicorn's class has what it needs, else uvicorn's own ('h11')."""
    needed = ("connection_made", "on_response_complete", "connection_lost")
    return HeaderDeadlineProtocol if all(hasattr(H11Protocol, n) for n in needed) else "h11"
