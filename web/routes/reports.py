"""Reports (issue #17): per agent and per week, how many live chats, how fast the first answer
and the resolution came, and what the visitors thought (their ratings). The page draws its chart
itself (an SVG, no chart library); the API answers the figures."""

from __future__ import annotations

import datetime as dt
from typing import Any

from quart import Blueprint, Response, request

from storage import queries
from web.apidoc import AGENT, api, json_response, query_param
from web.deps import require_agent, services
from web.presenters import answer
from web.shapes import AgentReport, ReportRow
from web.wire import ApiError

bp = Blueprint("reports", __name__)

MAX_WEEKS = 52


def monday(at: dt.datetime) -> dt.date:
    """The Monday of ``at``'s week, in UTC."""
    day = at.astimezone(dt.UTC).date()
    return day - dt.timedelta(days=day.weekday())


def _number(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


@bp.get("/api/chat/reports/agents")
@api(
    "agentReport",
    "Chats, response times and ratings per agent and week",
    "conversations",
    AGENT,
    {
        "200": json_response(
            "The last `weeks` weeks (this one included), a row per week and agent holding a "
            "live chat created that week. A transferred chat counts for whom it went to.",
            AgentReport,
            {
                "weeks": ["2026-11-23", "2026-11-30"],
                "rows": [
                    {
                        "week": "2026-11-30",
                        "agentId": "agt_91d0e3c4b5a6f728",
                        "agentName": "Javier Lazo",
                        "chats": 12,
                        "medianFirstResponseSeconds": 38.5,
                        "medianResolutionSeconds": 612.0,
                        "averageRating": 4.6,
                        "ratings": 5,
                    }
                ],
            },
        )
    },
    parameters=[
        query_param(
            "weeks",
            f"how many weeks, this one included (1 to {MAX_WEEKS}; 8 by default)",
            {"type": "string", "pattern": "^[0-9]{1,2}$"},
        )
    ],
    error_codes=("invalid_weeks",),
)
async def agent_report() -> Response:
    agent = await require_agent()
    raw = request.args.get("weeks", "8")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_WEEKS):
        raise ApiError(422, "invalid_weeks", f"weeks must be a whole number, 1 to {MAX_WEEKS}")
    weeks = int(raw)
    s = services()
    first = monday(s.clock.now()) - dt.timedelta(weeks=weeks - 1)
    since = dt.datetime.combine(first, dt.time(), dt.UTC)
    rows = await s.db.run(queries.select_agent_report, agent["tenant_id"], since)
    return answer(
        AgentReport(
            weeks=[(first + dt.timedelta(weeks=n)).isoformat() for n in range(weeks)],
            rows=[
                ReportRow(
                    week=r["week"].isoformat(),
                    agent_id=r["agent_id"],
                    agent_name=r["agent_name"],
                    chats=int(r["chats"]),
                    median_first_response_seconds=_number(r["first_response"]),
                    median_resolution_seconds=_number(r["resolution"]),
                    average_rating=None if r["rating"] is None else round(float(r["rating"]), 2),
                    ratings=int(r["ratings"]),
                )
                for r in rows
            ],
        )
    )
