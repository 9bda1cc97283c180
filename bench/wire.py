"""The bench client's own HTTP/1.1 and WebSocket client: small, on bare Trio streams.

The client shares two cores with the server it measures, so it must cost little per widget: no
task per socket besides the widget's own, no protocol library state, text frames only. It speaks
just what the bench needs (RFC 6455 client framing with masking, Content-Length or chunked
answers) and counts every byte it moves, so the table can show a widget's network cost.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import attrs
import trio

CRLF = b"\r\n"


class WireError(Exception):
    """The peer broke the protocol, refused the upgrade or closed the connection."""


@attrs.define
class Counters:
    """Bytes and requests moved by this process (the widget's network cost)."""

    sent: int = 0
    received: int = 0
    requests: int = 0
    sockets: int = 0


COUNTERS = Counters()


class _Reader:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise WireError("connection closed")
        COUNTERS.received += len(chunk)
        self.buffer += chunk

    async def until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            await self._fill()
        out = bytes(self.buffer[: end + len(marker)])
        del self.buffer[: end + len(marker)]
        return out

    async def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out


async def _send(stream: trio.SocketStream, data: bytes) -> None:
    COUNTERS.sent += len(data)
    await stream.send_all(data)


def _head(method: str, host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise WireError(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers


@attrs.frozen
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        hostport = url.split("://", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        return cls(host, int(port))


async def connect(endpoint: Endpoint, source: str | None = None) -> trio.SocketStream:
    """A TCP connection, from ``source`` (a loopback address: spreads the ephemeral ports)."""
    stream = await trio.open_tcp_stream(endpoint.host, endpoint.port, local_address=source)
    return stream


class Http:
    """One keep-alive HTTP/1.1 connection; ``request`` answers ``(status, json or None)``."""

    def __init__(self, endpoint: Endpoint, stream: trio.SocketStream) -> None:
        self.endpoint = endpoint
        self.stream = stream
        self.reader = _Reader(stream)

    @classmethod
    async def open(cls, endpoint: Endpoint, source: str | None = None) -> Http:
        return cls(endpoint, await connect(endpoint, source))

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        h = {"Accept": "application/json"} | (headers or {})
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if token:
            h["Authorization"] = f"Bearer {token}"
        COUNTERS.requests += 1
        await _send(self.stream, _head(method, self.endpoint.host, path, h, payload))
        status, response_headers = _parse_head(await self.reader.until(CRLF + CRLF))
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int((await self.reader.until(CRLF)).strip(), 16)
                chunk = await self.reader.exactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
        else:
            data = await self.reader.exactly(int(response_headers.get("content-length", "0")))
        decoded: Any = None
        if data and "json" in response_headers.get("content-type", ""):
            decoded = json.loads(data)
        elif data:
            decoded = data
        return status, decoded, response_headers

    async def aclose(self) -> None:
        await self.stream.aclose()


class ClosedError(WireError):
    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"socket closed ({code} {reason})")
        self.code = code


class WebSocket:
    """A client WebSocket: ``send`` a JSON frame, ``receive`` the next one (pings answered)."""

    def __init__(self, stream: trio.SocketStream, reader: _Reader) -> None:
        self.stream = stream
        self.reader = reader
        self.closed = False
        self._sending = trio.Lock()  # the reader answers pings while a sender may be sending

    @classmethod
    async def open(cls, endpoint: Endpoint, path: str, source: str | None = None) -> WebSocket:
        stream = await connect(endpoint, source)
        reader = _Reader(stream)
        key = base64.b64encode(os.urandom(16)).decode()
        head = _head(
            "GET",
            f"{endpoint.host}:{endpoint.port}",
            path,
            {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13",
            },
            b"",
        )
        try:
            await _send(stream, head)
            status, _ = _parse_head(await reader.until(CRLF + CRLF))
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        if status != 101:
            await trio.aclose_forcefully(stream)
            raise WireError(f"upgrade refused: {status}")
        COUNTERS.sockets += 1
        return cls(stream, reader)

    async def _frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytearray([0x80 | opcode])
        if n < 126:
            head.append(0x80 | n)
        elif n < 65536:
            head.append(0x80 | 126)
            head += n.to_bytes(2, "big")
        else:
            head.append(0x80 | 127)
            head += n.to_bytes(8, "big")
        mask = os.urandom(4)
        repeated = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
            n, "little"
        )
        async with self._sending:
            await _send(self.stream, bytes(head) + mask + masked)

    async def send(self, frame: dict[str, Any]) -> None:
        await self._frame(0x1, json.dumps(frame).encode())

    async def receive(self) -> dict[str, Any]:
        """The next text frame as JSON; :class:`ClosedError` when the server closed."""
        message = b""
        while True:
            b0, b1 = await self.reader.exactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.exactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.exactly(8), "big")
            if b1 & 0x80:  # a server must not mask; tolerate it
                await self.reader.exactly(4)
            payload = await self.reader.exactly(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.closed = True
                with trio.move_on_after(1):
                    await self._frame(0x8, payload[:2])
                await trio.aclose_forcefully(self.stream)
                raise ClosedError(code, payload[2:].decode(errors="replace"))
            if opcode == 0x9:
                await self._frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            message += payload
            if b0 & 0x80:
                decoded: dict[str, Any] = json.loads(message)
                return decoded

    async def aclose(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            with trio.move_on_after(1):
                try:
                    await self._frame(0x8, code.to_bytes(2, "big"))
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
        await trio.aclose_forcefully(self.stream)
