"""A widget told to slow down (429 with ``retryAfterSeconds``) holds its heartbeats until then and
keeps what the visitor sees as it was (issue #16). Page timers run on Playwright's fake clock."""

from __future__ import annotations

from typing import Any

from engine.throttle import Rate
from tests.browser.support import HostSite, artifact, in_browser, page_with
from tests.support import login, open_server, seed
from web.throttles import PublicLimits

# counts the widget's heartbeat requests as it makes them (before any answer)
COUNT_HEARTBEATS = """
window.__heartbeats = 0;
const realFetch = window.fetch;
window.fetch = function (url, options) {
  if (String(url).endsWith("/heartbeat")) window.__heartbeats += 1;
  return realFetch.apply(this, arguments);
};
"""


async def test_a_throttled_widget_waits_as_told_and_shows_nothing_broken(
    database_url: str, host_site: HostSite
) -> None:
    # one heartbeat from this address, then one every 50 s (the server's clock is real time)
    limits = PublicLimits(heartbeat_address=Rate(0.02, 1))
    async with open_server(database_url, throttle_scale=1.0, public_limits=limits) as server:
        [who] = await seed(server, domains=["127.0.0.1"])
        token = await login(server, who)
        async with server.http(token) as client:
            r = await client.get("/api/chat/widgets")
        [widget] = [w for w in r.json()["widgets"] if w["id"] == who.widget_id]
        host_site.pages["/"] = page_with(widget["embedCode"])
        async with server.http() as client:  # takes this address's one heartbeat
            r = await client.post(
                f"/api/chat/widgets/{who.widget_id}/heartbeat",
                json={"currentDomain": "127.0.0.1", "currentUrl": host_site.url("/")},
            )
            assert r.status_code == 200, r.text

        def scenario(browser: Any) -> dict[str, Any]:
            context = browser.new_context()
            context.add_init_script(COUNT_HEARTBEATS)
            context.clock.install()
            page = context.new_page()
            page.goto(host_site.url("/"))
            state = "(() => window.CurbeChat && CurbeChat.state())()"
            # the first heartbeat is refused: 429, retry in 50 s
            page.wait_for_function(f"{state}.error === 'http_429'")
            first = page.evaluate("window.__heartbeats")
            page.clock.run_for(46_000)  # three 15 s ticks inside the hold: none sent
            held = page.evaluate("window.__heartbeats")
            page.clock.run_for(15_000)  # the tick after the hold: one more
            after = page.evaluate("window.__heartbeats")
            shown = page.evaluate(f"{state}.mounted")
            page.screenshot(path=artifact("widget-throttled.png"))
            return {"first": first, "held": held, "after": after, "mounted": shown}

        seen = await in_browser(scenario)
    assert seen["first"] == 1, seen
    assert seen["held"] == 1, seen  # before: one more refused heartbeat at every tick
    assert seen["after"] == 2, seen
    assert seen["mounted"] is False  # not allowed yet: nothing shown, nothing broken
