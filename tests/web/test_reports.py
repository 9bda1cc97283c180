"""Reports (issue #17): per agent and week, chats, median first response and resolution, and the
average rating; the workspace's own chats only; figures from stored times, checked exactly."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.support import Server, accepted_chat, login, seed
from web.routes.reports import monday


async def backdate(srv: Server, cid: str, created: dt.datetime, replied: dt.datetime,
                   solved: dt.datetime | None) -> None:  # fmt: skip
    """Give a chat known times: created, its first agent message, solved."""

    async def change(conn: Any) -> None:
        await conn.execute(
            "UPDATE conversations SET created_at = $2, solved_at = $3 WHERE id = $1",
            cid,
            created,
            solved,
        )
        await conn.execute(
            """UPDATE messages SET created_at = $2
                WHERE conversation_id = $1 AND sender_type = 'agent'""",
            cid,
            replied,
        )

    await srv.run(change)


async def test_the_report_counts_each_agents_chats_times_and_ratings_by_week(
    server: Server,
) -> None:
    javier, ana = await seed(server, agents=2)
    [other] = await seed(server)
    tj, ta, to = await login(server, javier), await login(server, ana), await login(server, other)
    this_week = dt.datetime.combine(monday(dt.datetime.now(dt.UTC)), dt.time(9), dt.UTC)
    last_week = this_week - dt.timedelta(weeks=1)
    chats = []
    for who, token, started, reply_after, solve_after, score in (
        (javier, tj, this_week, 30, 600, 5),
        (javier, tj, this_week, 90, None, None),
        (javier, tj, this_week, 60, 300, 3),
        (ana, ta, last_week, 10, 100, 4),
    ):
        v, cid = await accepted_chat(server, who, token)
        async with server.http(token) as client:
            r = await client.post(f"/api/chat/conversations/{cid}/messages", json={"text": "hi"})
            assert r.status_code == 201, r.text
            if solve_after is not None:
                assert (await client.post(f"/api/chat/conversations/{cid}/solve")).is_success
        if score is not None:
            async with server.http(v.token) as client:
                r = await client.post(
                    f"/api/chat/widgets/{who.widget_id}/conversations/{cid}/rating",
                    json={"score": score},
                )
                assert r.status_code == 200, r.text
        solved = started + dt.timedelta(seconds=solve_after) if solve_after else None
        await backdate(server, cid, started, started + dt.timedelta(seconds=reply_after), solved)
        chats.append(cid)
    await accepted_chat(server, other, to)  # another workspace: never in ours

    async with server.http(tj) as client:
        r = await client.get("/api/chat/reports/agents", params={"weeks": 2})
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["weeks"] == [last_week.date().isoformat(), this_week.date().isoformat()]
        assert report["rows"] == [
            {
                "week": last_week.date().isoformat(),
                "agentId": ana.agent_id,
                "agentName": "Ana Ruiz",
                "chats": 1,
                "medianFirstResponseSeconds": 10.0,
                "medianResolutionSeconds": 100.0,
                "averageRating": 4.0,
                "ratings": 1,
            },
            {
                "week": this_week.date().isoformat(),
                "agentId": javier.agent_id,
                "agentName": "Javier Lazo",
                "chats": 3,
                "medianFirstResponseSeconds": 60.0,  # of 30, 60, 90
                "medianResolutionSeconds": 450.0,  # of 300 and 600 (one still open)
                "averageRating": 4.0,  # of 5 and 3
                "ratings": 2,
            },
        ]
        this_only = (await client.get("/api/chat/reports/agents", params={"weeks": 1})).json()
        assert [row["agentName"] for row in this_only["rows"]] == ["Javier Lazo"]
        for bad in ("0", "53", "x", "-1", "1.5"):
            r = await client.get("/api/chat/reports/agents", params={"weeks": bad})
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_weeks", bad
    async with server.http(to) as client:
        theirs = (await client.get("/api/chat/reports/agents")).json()
        assert [row["agentId"] for row in theirs["rows"]] == [other.agent_id]
        assert len(theirs["weeks"]) == 8


def test_a_week_starts_on_monday_in_utc() -> None:
    sunday_night_madrid = dt.datetime(
        2026, 12, 6, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )
    assert monday(sunday_night_madrid) == dt.date(2026, 11, 30)  # still Sunday 22:30 UTC
    assert monday(dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC)) == dt.date(2026, 12, 7)
