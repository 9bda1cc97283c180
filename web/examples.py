"""Example values of the OpenAPI document: what a real answer looks like, for the reader.

Plain data; ``tests/web/test_openapi.py`` validates every example against the schema it shows.
"""

from __future__ import annotations

from typing import Any

from web.widgets import DEFAULT_APPEARANCE

# what examples use for the server's own address (the document's ``servers`` has the real one)
BASE_URL = "https://chat.example.com"

# --- example values -----------------------------------------------------------------------------

T0 = "2026-11-29T13:20:00.123Z"
T1 = "2026-11-29T13:21:00.000Z"
TENANT = "ten_6b1f0c2a9d3e4f57"
WIDGET = "wgt_2c9e41f07a5b8d36"
VISITOR = "vis_3f9c0a51d2e84b7c"
AGENT = "agt_91d0e3c4b5a6f728"
CONVERSATION = "conv_5e7a9c1b3d2f4068"
MESSAGE = "msg_0a1b2c3d4e5f6789"
VISITOR_TOKEN = (
    f"vt2.k3f2a91c0.{VISITOR}.{TENANT}.1799366400.q5W1mXb0c9R7t2Yv3Zk8HnLpA4sDfGjE6uIoPwQeRtY"
)

EX_AGENT = {
    "id": AGENT,
    "tenantId": TENANT,
    "email": "javier@insuremax.com",
    "name": "Javier Lazo",
    "avatarUrl": None,
}
EX_MESSAGE = {
    "id": MESSAGE,
    "conversationId": CONVERSATION,
    "seq": 2,
    "senderType": "visitor",
    "senderId": VISITOR,
    "senderName": "María López",
    "text": "Hi, I need a quote for my car",
    "clientMessageId": "c-7f3a",
    "clientTimestamp": None,
    "createdAt": T0,
}
EX_MESSAGE_SUMMARY = {
    k: EX_MESSAGE[k]
    for k in ("id", "seq", "senderType", "senderId", "senderName", "text", "createdAt")
}
EX_CONVERSATION = {
    "id": CONVERSATION,
    "tenantId": TENANT,
    "widgetId": WIDGET,
    "visitorId": VISITOR,
    "kind": "live_chat",
    "status": "WAITING",
    "assignee": None,
    "createdAt": T0,
    "updatedAt": T0,
    "solvedAt": None,
    "waitDeadline": "2026-11-29T13:21:00.123Z",
    "waitTimedOut": False,
    "lastSeq": 2,
}
EX_OPEN_CONVERSATION = {
    **EX_CONVERSATION,
    "status": "OPEN",
    "assignee": {"id": AGENT, "name": "Javier Lazo", "avatarUrl": None},
    "updatedAt": T1,
    "waitDeadline": None,
    "lastSeq": 4,
}
EX_CONTACT = {
    "visitorId": VISITOR,
    "displayName": "María López",
    "name": "María López",
    "email": "maria@example.com",
    "phone": None,
    "ip": "203.0.113.7",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36",
    "currentUrl": "https://www.insuremax.com/quote",
    "location": "America/Mexico_City, es-MX (from the browser)",
    "browser": "Chrome 131",
    "os": "Linux",
    "device": None,
}
EX_APPEARANCE = DEFAULT_APPEARANCE  # what a new widget looks like
EX_CHANNELS = {
    "liveChat": True,
    "sms": None,
    "call": None,
    "whatsapp": "+52 55 1234 5678",
    "telegram": None,
    "messenger": None,
    "email": None,
}


EX_WIDGET: dict[str, Any] = {
    "id": WIDGET,
    "tenantId": TENANT,
    "name": "InsureMax",
    "status": "ACTIVE",
    "statusReason": None,
    "domain": "www.insuremax.com",
    "domains": ["*.insuremax.com"],
    "lastSeenAt": T0,
    "lastSeenDomain": "www.insuremax.com",
    "lastSeenUrl": "https://www.insuremax.com/quote",
    "lastRefusedAt": None,
    "lastRefusedDomain": None,
    "waitTimeoutSeconds": 60,
    "locale": "auto",
    "routing": "manual",
    "appearance": EX_APPEARANCE,
    "channels": EX_CHANNELS,
    "embedCode": (
        f'<script async src="{BASE_URL}/widget.js" data-widget-id="{WIDGET}" '
        f'data-tenant="{TENANT}"></script>'
    ),
    "createdAt": "2026-11-01T09:00:00.000Z",
    "updatedAt": "2026-11-20T10:30:00.000Z",
}


EX_ESCALATION = {
    "kind": "conversation",
    "id": "conv_9f1c2a7d0b3e4f5a",
    "error": "RuntimeError: injected commit failure",
    "where": "engine/conversation_actor.py:207 in _handle",
    "at": "2026-11-29T13:20:00.000Z",
    "restarts": 4,
}

EX_ACTOR = {
    "kind": "conversation",
    "id": CONVERSATION,
    "tenantId": TENANT,
    "state": "WAITING",
    "subscribers": 2,
    "mailbox": 0,
    "restarts": 0,
    "startedAt": T0,
    "lastActivityAt": T0,
    "lastCrash": None,
    "visitorId": VISITOR,
    "lastSeq": 2,
    "waitDeadline": "2026-11-29T13:21:00.123Z",
}


EX_CLUSTER = {
    "mode": "cluster",
    "nodeId": "node-a",
    "shards": [0, 1, 2, 3],
    "draining": [],
    "trustedForSeconds": 6.4,
    "takeovers": 32,
    "losses": 0,
    "forwarded": 1840,
    "served": 1795,
    "busConnected": True,
    "nodes": [
        {
            "nodeId": "node-a",
            "address": "https://chat.example.com",
            "startedAt": T0,
            "seenAt": T0,
            "live": True,
            "shards": 32,
        },
        {
            "nodeId": "node-b",
            "address": "https://chat.example.com",
            "startedAt": T0,
            "seenAt": T0,
            "live": True,
            "shards": 32,
        },
    ],
}
