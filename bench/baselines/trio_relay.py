"""The bare-Trio floor: what a relay costs on Trio with no web framework at all.

WebSockets through trio-websocket's ``serve_websocket``; HTTP through a small hand-written
h11 keep-alive server on ``trio.serve_tcp``, on a separate port. State in memory, no
persistence (``--persist`` is refused).

    python -m bench.baselines.trio_relay [--port 0] [--ws-port 0] [--queue-size 256]

prints one JSON line once it listens, ``{"http": "http://127.0.0.1:P", "ws": "ws://127.0.0.1:Q",
"pid": N}``, and serves until SIGTERM or SIGINT (exit code 0).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import h11
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
)

from bench.baselines.common import (
    CLOSE_NOT_FOUND,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHENTICATED,
    HOST,
    INBOX_READY,
    MAX_BODY_BYTES,
    VISITOR_WS,
    Relay,
    banner,
    parse_args,
    raise_nofile_limit,
    route_ws,
    visitor_ready,
)

RECEIVE_BYTES = 65536
CLOSE_TIMEOUT = 5.0  # seconds a close handshake (1013, or 1001 at shutdown) may take
CLOSE_GOING_AWAY = 1001


class TrioOutbox:
    """A socket's bounded queue of outgoing texts (a Trio memory channel), drained by one task.

    ``offer`` never waits. When the queue is full the outbox is marked overflowed and takes no
    more; the writer stops at its next text (the one being written is finished, so no frame
    is cut) and the socket is closed 1013. The socket's reader calls ``wait_room`` before each
    frame: it waits while the queue is more than half full.
    """

    __slots__ = ("_receive", "_room", "_send", "overflowed", "pause", "queued")

    def __init__(self, size: int) -> None:
        self.pause = size // 2
        self._send, self._receive = trio.open_memory_channel[str](size)
        self._room: trio.Event | None = None
        self.queued = 0
        self.overflowed = False

    def offer(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self._send.send_nowait(text)
        except trio.WouldBlock:
            self.overflowed = True
            return
        self.queued += 1

    async def wait_room(self) -> None:
        """Return once the queue is at most half full (at once when it is)."""
        while self.queued > self.pause and not self.overflowed:
            self._room = trio.Event()
            await self._room.wait()

    async def drain(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Write queued texts in order; returns only once the queue overflowed."""
        async for text in self._receive:
            self.queued -= 1
            if self.overflowed:
                return
            if self._room is not None and self.queued <= self.pause:
                self._room.set()
                self._room = None
            await send(text)


# --- WebSocket --------------------------------------------------------------------------------


async def serve_ws(
    relay: Relay, sockets: set[WebSocketConnection], request: WebSocketRequest
) -> None:
    path, _, query = request.path.partition("?")
    endpoint, _ = route_ws(path)
    visitor_id: str | None = None
    if endpoint == VISITOR_WS:
        visitor_id = token_of(query)
    ws = await request.accept()
    if not endpoint:
        await ws.aclose(CLOSE_NOT_FOUND)
        return
    if endpoint == VISITOR_WS and not visitor_id:
        await ws.aclose(CLOSE_UNAUTHENTICATED)
        return
    outbox = TrioOutbox(relay.queue_size)
    relay.join(visitor_id, outbox)
    sockets.add(ws)
    try:
        outbox.offer(INBOX_READY if visitor_id is None else visitor_ready(visitor_id))
        async with trio.open_nursery() as nursery:

            async def write() -> None:
                try:
                    await outbox.drain(ws.send_message)
                    with trio.move_on_after(CLOSE_TIMEOUT):
                        await ws.aclose(CLOSE_TOO_SLOW, "too slow")
                except ConnectionClosed:
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(write)
            try:
                while True:
                    await outbox.wait_room()
                    relay.on_frame(visitor_id, outbox, await ws.get_message())
            except ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()
    finally:
        relay.leave(visitor_id, outbox)
        sockets.discard(ws)


def token_of(query: str) -> str | None:
    """The ``token`` query parameter (tokens are ids: no percent-decoding needed)."""
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "token" and value:
            return value
    return None


# --- HTTP -------------------------------------------------------------------------------------


async def serve_http(relay: Relay, stream: trio.SocketStream) -> None:
    """One keep-alive HTTP/1.1 connection: requests answered in order, JSON with Content-Length."""
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = await next_event(conn, stream)
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed (or a peer that closed mid-request)
            authorization: str | None = None
            for name, value in event.headers:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
            body = b""
            too_large = False
            while True:
                part = await next_event(conn, stream)
                if isinstance(part, h11.Data):
                    if len(body) + len(part.data) > MAX_BODY_BYTES:
                        too_large = True
                    else:
                        body += part.data
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return
            if too_large:
                status, payload = 413, b'{"error": {"code": "too_large"}}'
            else:
                status, payload = relay.http(
                    event.method.decode("ascii"),
                    event.target.decode("latin-1"),
                    authorization,
                    body,
                )
            await stream.send_all(
                conn.send(
                    h11.Response(
                        status_code=status,
                        headers=[
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                        ],
                    )
                )
                + conn.send(h11.Data(data=payload))
                + conn.send(h11.EndOfMessage())
            )
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            payload = b'{"error": {"code": "bad_request"}}'
            response = h11.Response(
                status_code=400,
                headers=[
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            )
            try:
                await stream.send_all(
                    conn.send(response)
                    + conn.send(h11.Data(data=payload))
                    + conn.send(h11.EndOfMessage())
                )
            except (h11.LocalProtocolError, trio.BrokenResourceError):
                pass
    except trio.BrokenResourceError:
        pass  # the peer reset the connection
    finally:
        await stream.aclose()


async def next_event(conn: h11.Connection, stream: trio.SocketStream) -> object:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(RECEIVE_BYTES))
            continue
        return event


# --- process ----------------------------------------------------------------------------------


async def main(http_port: int, ws_port: int, queue_size: int) -> None:
    relay = Relay(queue_size)
    sockets: set[WebSocketConnection] = set()
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            listeners = await nursery.start(
                partial(trio.serve_tcp, partial(serve_http, relay), http_port, host=HOST)
            )
            server = await nursery.start(
                partial(serve_websocket, partial(serve_ws, relay, sockets), HOST, ws_port, None)
            )
            print(banner(listeners[0].socket.getsockname()[1], server.port), flush=True)
            async for _ in signals:
                break
        # going away: close the open sockets 1001 (briefly), then stop everything
        with trio.move_on_after(CLOSE_TIMEOUT):
            async with trio.open_nursery() as closing:
                for ws in list(sockets):
                    closing.start_soon(ws.aclose, CLOSE_GOING_AWAY)
        nursery.cancel_scope.cancel()


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(
        "python -m bench.baselines.trio_relay",
        "Bare Trio relay (trio-websocket + h11).",
        argv,
        persist=False,
        ws_port=True,
    )
    raise_nofile_limit()
    trio.run(main, args.port, args.ws_port, args.queue_size)
    return 0


if __name__ == "__main__":
    sys.exit(run())
