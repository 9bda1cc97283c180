"""The demo: a tenant, an agent and a widget seeded by ``curbe-chat serve --demo``, and the
customer's page (``/demo``) that holds nothing but the widget's embed code."""

from __future__ import annotations

from typing import Any

from storage import queries
from storage.db import Database
from web.auth import hash_password, new_id
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
DEMO_PASSWORD = "curbe-demo-1234"


async def seed_demo(db: Database, settings: Settings) -> dict[str, Any]:
    """Create (once) the demo tenant, agent and widget; returns what to print."""
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
            await hash_password(DEMO_PASSWORD),
            None,
        )
        widget_id = new_id("wgt")
        await db.run(queries.insert_widget, widget_id, tenant_id, "InsureMax", [], 60)
    else:
        tenant_id, agent_id = existing["tenant_id"], existing["id"]
        widget_id = (await db.run(queries.select_widgets, tenant_id))[0]["id"]
    base = settings.base_url
    return {
        "tenantId": tenant_id,
        "agentId": agent_id,
        "widgetId": widget_id,
        "login": {"email": DEMO_EMAIL, "password": DEMO_PASSWORD},
        "urls": {
            "inbox": f"{base}/inbox",
            "login": f"{base}/login",
            "settings": f"{base}/settings/widgets",
            "demoSite": f"{base}/demo",
            "health": f"{base}/healthz",
        },
        "embedCode": embed_code(base, widget_id, tenant_id),
    }
