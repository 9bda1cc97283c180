"""The demo: a tenant, an agent and a widget seeded by ``curbe-chat serve --demo``, and the
customer's page (``/demo``) that holds nothing but the widget's embed code."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from storage import queries
from storage.db import Database
from web.auth import hash_password, new_id, verify_password
from web.services import Settings
from web.widgets import embed_code

DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>InsureMax — demo site</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#1f2937}
code,pre{background:#f3f4f6;border-radius:6px}pre{padding:1rem;white-space:pre-wrap;word-break:break-all}</style>
</head><body>
<h1>InsureMax</h1>
<p>Car, home and life insurance quotes in minutes. This page stands in for a customer's site: it
holds nothing but the embed code below, exactly as Settings &rsaquo; Chat widget gives it.</p>
<pre><code>{{snippet_text}}</code></pre>
<p>Open the chat bubble in the corner to talk to the demo agent, signed in at
<a href="/inbox">/inbox</a>.</p>
{{snippet}}
</body></html>
"""


DEMO_EMAIL = "demo@curbe.chat"
# the demo agent's password before issue #16: published in the README, so never left in place
PUBLISHED_DEMO_PASSWORD = "curbe-demo-1234"

log = logging.getLogger("curbe.demo")


async def seed_demo(db: Database, settings: Settings) -> dict[str, Any]:
    """Create (once) the demo tenant, agent and widget, and give the agent this start's password
    (``settings.demo_password``, else a random one); returns what to print."""
    password = settings.demo_password or secrets.token_urlsafe(12)
    password_hash = await hash_password(password)
    existing = await db.run(queries.select_agent_by_email, DEMO_EMAIL)
    if existing is None:
        tenant_id = new_id("ten")
        await db.run(queries.insert_tenant, tenant_id, "Demo Insurance")
        agent_id = new_id("agt")
        await db.run(
            queries.insert_agent,
            agent_id,
            tenant_id,
            DEMO_EMAIL,
            "Javier Lazo",
            password_hash,
            None,
        )
        widget_id = new_id("wgt")
        await db.run(queries.insert_widget, widget_id, tenant_id, "InsureMax", [], 60)
    else:
        tenant_id, agent_id = existing["tenant_id"], existing["id"]
        await db.run(queries.update_agent_password_hash, agent_id, password_hash)
        widget_id = (await db.run(queries.select_widgets, tenant_id))[0]["id"]
    base = settings.base_url
    return {
        "tenantId": tenant_id,
        "agentId": agent_id,
        "widgetId": widget_id,
        "login": {"email": DEMO_EMAIL, "password": password},
        "urls": {
            "inbox": f"{base}/inbox",
            "login": f"{base}/login",
            "settings": f"{base}/settings/widgets",
            "demoSite": f"{base}/demo",
            "health": f"{base}/healthz",
        },
        "embedCode": embed_code(base, widget_id, tenant_id),
    }


async def check_demo_left(db: Database) -> bool:
    """At a start without ``--demo``: warn when a demo agent is still in the database, and
    replace the password it had before issue #16 (published) with a random one nobody knows.
    Answers whether a demo agent exists."""
    existing = await db.run(queries.select_agent_by_email, DEMO_EMAIL)
    if existing is None:
        return False
    if await verify_password(existing["password_hash"], PUBLISHED_DEMO_PASSWORD):
        locked = await hash_password(secrets.token_urlsafe(24))
        await db.run(queries.update_agent_password_hash, existing["id"], locked)
        log.warning(
            "the demo agent had the published demo password: it now has a random one",
            extra={"agent_id": existing["id"]},
        )
    log.warning(
        "a demo agent (%s) is in this database, seeded by an earlier --demo start: its "
        "password is the one that start printed",
        DEMO_EMAIL,
        extra={"agent_id": existing["id"], "tenant_id": existing["tenant_id"]},
    )
    return True
