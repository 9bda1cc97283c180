"""Rating (issue #17): a visitor rates its solved chat 1 to 5 with an optional comment; stored
once per chat, shown to the agents, refused for a chat still open or not the visitor's."""

from __future__ import annotations

from tests.support import Server, accepted_chat, inbox_socket, login, new_visitor, seed


async def test_a_solved_chat_is_rated_and_the_inbox_sees_it(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    url = f"/api/chat/widgets/{who.widget_id}/conversations/{cid}/rating"
    async with server.http(v.token) as client:
        r = await client.post(url, json={"score": 5})
        assert r.status_code == 409, r.text  # still OPEN
        assert r.json()["error"]["code"] == "conversation_not_solved"
    async with server.http(token) as client:
        assert (await client.post(f"/api/chat/conversations/{cid}/solve")).status_code == 200
    async with inbox_socket(server, token) as inbox, server.http(v.token) as client:
        r = await client.post(url, json={"score": 4, "comment": "  Quick and clear  "})
        assert r.status_code == 200, r.text
        rating = r.json()
        assert rating["score"] == 4 and rating["comment"] == "Quick and clear"
        assert rating["conversationId"] == cid
        event = await inbox.wait_for("conversation_rated")
        assert event["conversationId"] == cid and event["data"] == rating
        mine = (await client.get(f"/api/chat/widgets/{who.widget_id}/conversation")).json()
        assert mine["rating"] == rating  # the widget knows after a reload
        r = await client.post(url, json={"score": 5})  # rating again replaces it
        assert r.status_code == 200 and r.json()["comment"] is None, r.text
    async with server.http(token) as client:
        detail = (await client.get(f"/api/chat/conversations/{cid}")).json()
    assert detail["rating"]["score"] == 5


async def test_bad_ratings_are_refused_and_change_nothing(server: Server) -> None:
    [who] = await seed(server)
    [other] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    async with server.http(token) as client:
        await client.post(f"/api/chat/conversations/{cid}/solve")
    url = f"/api/chat/widgets/{who.widget_id}/conversations/{cid}/rating"
    async with server.http(v.token) as client:
        for bad in (
            {"score": 0},
            {"score": 6},
            {"score": "5"},
            {"score": 4.5},
            {},
            {"score": 3, "comment": "x" * 1001},
            {"score": 3, "extra": True},
        ):
            r = await client.post(url, json=bad)
            assert r.status_code == 422, (bad, r.text)
    stranger = await new_visitor(server, who.widget_id)
    async with server.http(stranger.token) as client:
        assert (await client.post(url, json={"score": 1})).status_code == 404
    elsewhere = await new_visitor(server, other.widget_id)
    async with server.http(elsewhere.token) as client:  # another site's visitor
        r = await client.post(
            f"/api/chat/widgets/{other.widget_id}/conversations/{cid}/rating", json={"score": 1}
        )
        assert r.status_code == 404, r.text
    async with server.http(token) as client:
        assert (await client.get(f"/api/chat/conversations/{cid}")).json()["rating"] is None
