"""Keep-alive HTTP connections (issue 16, found by the fault suite: 2 of 100,000 generated
requests were never answered). An answer that needs no body (a 401) went out before the body
had arrived; Quart-Trio then cancelled the request's task while Hypercorn was still ending the
exchange inside it, so the connection was neither recycled nor closed and the next request on
it waited forever. The same cancellation skipped the restart of the idle timer after every
answer: an idle keep-alive connection was never closed (docs/reliability.md)."""

from __future__ import annotations

import pytest
import trio

from tests.support import Server, open_server

pytestmark = pytest.mark.regression


async def read_answer(stream: trio.SocketStream, received: bytearray) -> bytes:
    """One whole answer (its head and a Content-Length body) from ``received`` + ``stream``."""
    while True:
        head, sep, rest = bytes(received).partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) >= length:
                del received[: len(head) + 4 + length]
                return head + sep + rest[:length]
        chunk = await stream.receive_some()
        assert chunk, f"the connection closed; received {bytes(received)[:200]!r}"
        received += chunk


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


async def test_an_answer_waits_for_the_body_and_the_connection_carries_the_next_request(
    server: Server,
) -> None:
    body = b'{"seq": 1}'
    head = (
        b"POST /api/chat/conversations/conv_1/read HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    stream = await trio.open_tcp_stream("127.0.0.1", port_of(server))
    async with stream:
        await stream.send_all(head)  # the body comes later, as a slow client's would
        early = bytearray()
        # a window for the server to answer too soon (no token: a 401 needs no body); what it
        # sends in it is the finding, so nothing here waits on a condition that could be met
        with trio.move_on_after(1):
            early += await stream.receive_some()
        assert early == b"", f"answered before the body arrived: {bytes(early)[:120]!r}"
        await stream.send_all(body)
        received = bytearray()
        with trio.fail_after(10):
            first = await read_answer(stream, received)
        assert first.startswith(b"HTTP/1.1 401"), first[:200]
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # before: never answered, the connection stuck between two exchanges
        with trio.fail_after(10):
            second = await read_answer(stream, received)
        assert second.startswith(b"HTTP/1.1 200"), second[:200]


async def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(
    database_url: str,
) -> None:
    async with open_server(database_url, keep_alive_seconds=1.0) as server:
        stream = await trio.open_tcp_stream("127.0.0.1", port_of(server))
        async with stream:
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            received = bytearray()
            with trio.fail_after(10):
                answer = await read_answer(stream, received)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            # before: the idle timer was never restarted after an answer, so this waited forever
            with trio.fail_after(15):
                rest = await stream.receive_some()
                while rest:
                    rest = await stream.receive_some()


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (b"X-Curbe-CSRF: a\x0bb", 400),  # a control character in a header value
        (b"Transfer-Encoding: gzip", 501),  # a transfer coding other than chunked
    ],
)
async def test_malformed_http_is_refused_by_the_http_layer_which_closes_the_connection(
    server: Server, header: bytes, status: int
) -> None:
    """docs/api.md, "Malformed HTTP": what cannot be read as HTTP never reaches a route; the
    fault suite counts these answers apart by this shape (chaos/fuzz.py, http_layer_refusal)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port_of(server))
    async with stream:
        await stream.send_all(
            b"POST /api/auth/logout HTTP/1.1\r\nHost: localhost\r\n"
            + header
            + b"\r\nContent-Length: 0\r\n\r\n"
        )
        received = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some():
                received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(f"http/1.1 {status}".encode()), received[:200]
    assert b"connection: close" in lines and rest == b""
    assert not any(line.startswith(b"content-type") for line in lines)
    async with server.http() as client:  # and the server goes on serving
        assert (await client.get("/healthz")).status_code == 200
