from tests.support import Server, inbox_socket, login, new_visitor, seed, visitor_socket


async def test_smoke(server: Server) -> None:
    [a] = await seed(server)
    token = await login(server, a)
    v = await new_visitor(server, a.widget_id)
    async with inbox_socket(server, token) as inbox, visitor_socket(server, v) as vs:
        async with server.http(v.token) as c:
            r = await c.post(
                f"/api/chat/widgets/{a.widget_id}/conversations",
                json={"name": "Carlos Lopez", "email": "c@example.com", "message": "hola"},
            )
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
        ev = await inbox.wait_for("conversation_created")
        assert ev["conversationId"] == cid
        async with server.http(token) as c:
            r = await c.post(f"/api/chat/conversations/{cid}/accept")
            assert r.status_code == 200, r.text
        await vs.wait_for("conversation_assigned")
        await vs.wait_for("conversation_status_changed")
