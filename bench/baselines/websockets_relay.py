"""The Python floor: what a relay costs on the fastest common Python async stack.

asyncio on uvloop; WebSockets through ``websockets`` (the ``websockets.asyncio.server`` API);
HTTP through a minimal ``asyncio.Protocol`` + h11 keep-alive server on a separate port. State
in memory, no persistence (``--persist`` is refused).

    python -m bench.baselines.websockets_relay [--port 0] [--ws-port 0] [--queue-size 256]

prints one JSON line once it listens, ``{"http": "http://127.0.0.1:P", "ws": "ws://127.0.0.1:Q",
"pid": N}``, and serves until SIGTERM or SIGINT (exit code 0).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import cast

import h11
import uvloop
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

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


class AsyncioOutbox:
    """A socket's bounded queue of outgoing texts (an ``asyncio.Queue``), drained by one task.

    ``offer`` never waits. When the queue is full the outbox is marked overflowed and takes no
    more; the writer stops at its next text (the one being written is finished, so no frame
    is cut) and the socket is closed 1013. The socket's reader calls ``wait_room`` before each
    frame: it waits while the queue is more than half full.
    """

    __slots__ = ("_queue", "_room", "overflowed", "pause")

    def __init__(self, size: int) -> None:
        self.pause = size // 2
        self._queue: asyncio.Queue[str] = asyncio.Queue(size)
        self._room: asyncio.Future[None] | None = None
        self.overflowed = False

    def offer(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True

    async def wait_room(self) -> None:
        """Return once the queue is at most half full (at once when it is)."""
        while self._queue.qsize() > self.pause and not self.overflowed:
            self._room = asyncio.get_running_loop().create_future()
            await self._room

    async def drain(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Write queued texts in order; returns only once the queue overflowed."""
        queue = self._queue
        while True:
            text = await queue.get()
            if self.overflowed:
                return
            room = self._room
            if room is not None and queue.qsize() <= self.pause:
                self._room = None
                if not room.done():
                    room.set_result(None)
            await send(text)


# --- WebSocket --------------------------------------------------------------------------------


async def serve_ws(relay: Relay, ws: ServerConnection) -> None:
    assert ws.request is not None  # set once the handshake is done, before the handler runs
    path, _, query = ws.request.path.partition("?")
    endpoint, _ = route_ws(path)
    if not endpoint:
        await ws.close(CLOSE_NOT_FOUND)
        return
    visitor_id: str | None = None
    if endpoint == VISITOR_WS:
        visitor_id = token_of(query)
        if not visitor_id:
            await ws.close(CLOSE_UNAUTHENTICATED)
            return
    outbox = AsyncioOutbox(relay.queue_size)
    relay.join(visitor_id, outbox)
    writer = asyncio.create_task(write(outbox, ws))
    try:
        outbox.offer(INBOX_READY if visitor_id is None else visitor_ready(visitor_id))
        async for raw in ws:
            relay.on_frame(visitor_id, outbox, raw)
            await outbox.wait_room()
    except ConnectionClosed:
        pass
    finally:
        relay.leave(visitor_id, outbox)
        writer.cancel()


async def write(outbox: AsyncioOutbox, ws: ServerConnection) -> None:
    """The socket's writer: drains its outbox; on overflow closes it 1013 (bounded by
    ``close_timeout``), which also ends the reading loop."""
    try:
        await outbox.drain(ws.send)
        await ws.close(CLOSE_TOO_SLOW, "too slow")
    except ConnectionClosed:
        pass


def token_of(query: str) -> str | None:
    """The ``token`` query parameter (tokens are ids: no percent-decoding needed)."""
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "token" and value:
            return value
    return None


# --- HTTP -------------------------------------------------------------------------------------

JSON_TYPE = (b"content-type", b"application/json")


class HttpProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: requests answered in order, JSON with Content-Length.

    Everything a relay answers is computed without waiting, so each complete request is
    answered from ``data_received`` itself (pipelined requests too).
    """

    def __init__(self, relay: Relay, connections: set[HttpProtocol]) -> None:
        self.relay = relay
        self.connections = connections
        self.conn = h11.Connection(h11.SERVER)
        self.transport: asyncio.Transport | None = None
        self.request: h11.Request | None = None
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        self._process()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        self._process()
        return False  # the transport closes itself

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _process(self) -> None:
        conn = self.conn
        transport = self.transport
        assert transport is not None
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                self._respond(400, b'{"error": {"code": "bad_request"}}', close=True)
                return
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Request):
                self.request = event
                self.body.clear()
            elif isinstance(event, h11.Data):
                self.body += event.data
                if len(self.body) > MAX_BODY_BYTES:
                    self._respond(413, b'{"error": {"code": "too_large"}}', close=True)
                    return
            elif isinstance(event, h11.EndOfMessage):
                request = self.request
                assert request is not None
                authorization: str | None = None
                for name, value in request.headers:
                    if name == b"authorization":
                        authorization = value.decode("latin-1")
                status, payload = self.relay.http(
                    request.method.decode("ascii"),
                    request.target.decode("latin-1"),
                    authorization,
                    bytes(self.body),
                )
                self._respond(status, payload)
                if conn.our_state is h11.MUST_CLOSE:
                    transport.close()
                    return
                conn.start_next_cycle()
            else:  # ConnectionClosed
                transport.close()
                return

    def _respond(self, status: int, payload: bytes, *, close: bool = False) -> None:
        conn = self.conn
        assert self.transport is not None
        if close and conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.close()
            return
        headers = [JSON_TYPE, (b"content-length", str(len(payload)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        try:
            self.transport.write(
                conn.send(h11.Response(status_code=status, headers=headers))
                + conn.send(h11.Data(data=payload))
                + conn.send(h11.EndOfMessage())
            )
        except h11.LocalProtocolError:
            close = True
        if close:
            self.transport.close()


# --- process ----------------------------------------------------------------------------------


async def main(http_port: int, ws_port: int, queue_size: int) -> None:
    relay = Relay(queue_size)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    connections: set[HttpProtocol] = set()
    http = await loop.create_server(lambda: HttpProtocol(relay, connections), HOST, http_port)
    try:
        async with serve(partial(serve_ws, relay), HOST, ws_port, ping_interval=None) as server:
            print(
                banner(
                    http.sockets[0].getsockname()[1],
                    next(iter(server.sockets)).getsockname()[1],
                ),
                flush=True,
            )
            await stop.wait()
            # leaving the block closes the WebSocket server and its connections (1001)
    finally:
        http.close()
        for connection in list(connections):
            connection.close()
        await http.wait_closed()


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(
        "python -m bench.baselines.websockets_relay",
        "asyncio/uvloop relay (websockets + h11).",
        argv,
        persist=False,
        ws_port=True,
    )
    raise_nofile_limit()
    uvloop.run(main(args.port, args.ws_port, args.queue_size))
    return 0


if __name__ == "__main__":
    sys.exit(run())
