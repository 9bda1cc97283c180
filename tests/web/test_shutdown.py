"""A server that stops (SIGTERM, ``docker stop``, an upgrade) tells every open socket so: close
code 1001, at once, so that widgets and inboxes reconnect (to another node) and resume."""

from __future__ import annotations

import pytest
import trio
import trio_websocket

from tests.support import Server, inbox_socket, login, new_visitor, seed, visitor_socket


async def test_a_stopping_server_closes_every_open_socket_with_going_away(server: Server) -> None:
    (who,) = await seed(server)
    token = await login(server, who)
    visitor = await new_visitor(server, who.widget_id)
    async with inbox_socket(server, token) as inbox, visitor_socket(server, visitor) as widget:
        server.stop.set()
        # well within the grace period (5 s), after which Hypercorn would drop them (1006)
        with trio.fail_after(2):
            for sock in (inbox, widget):
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    while True:
                        await sock.ws.get_message()
                assert closed.value.reason.code == 1001, closed.value.reason
