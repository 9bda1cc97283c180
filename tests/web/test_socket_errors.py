"""A socket handler that fails unexpectedly answers the frame with an error and logs it; the
socket stays open (issue #16: never a silent close)."""

from __future__ import annotations

import logging

import pytest

from tests.support import Server, inbox_socket, login, new_visitor, seed, visitor_socket
from web.streams import EventStream


async def test_an_unexpected_error_is_an_error_frame_and_a_log_record(
    server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: EventStream, conversation_id: str, after_seq: int) -> None:
        raise RuntimeError("a bug in a frame handler")

    monkeypatch.setattr(EventStream, "resume_frame", broken)
    [who] = await seed(server)
    token = await login(server, who)
    visitor = await new_visitor(server, who.widget_id)
    async with inbox_socket(server, token) as inbox, visitor_socket(server, visitor) as widget:
        for sock, frame in (
            (widget, {"type": "resume", "afterSeq": 0, "conversationId": "conv_0123456789abcdef"}),
            (inbox, {"type": "resume", "afterSeq": 0, "conversationId": "conv_0123456789abcdef"}),
        ):
            with caplog.at_level(logging.ERROR, logger="curbe.web.ws"):
                await sock.send(frame)
                answer = await sock.wait_for("error")
            assert answer["error"]["code"] == "internal_error", answer
            assert "a bug" not in str(answer)  # no internals to the client
            await sock.send({"type": "ping"})
            await sock.wait_for("pong")  # still open
        failed = [r for r in caplog.records if r.getMessage() == "socket frame failed"]
        assert len(failed) == 2 and all(r.exc_info for r in failed)


async def test_frames_the_fault_suite_found_are_refusals_not_internal_errors(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    # chaos/frames.py found both: an empty frame read as None (TypeError in the JSON decoder)
    # and a visitor's heartbeat frame sent to the inbox (AttributeError in its handler)
    [who] = await seed(server)
    token = await login(server, who)
    visitor = await new_visitor(server, who.widget_id)
    heartbeat = {"type": "heartbeat", "currentDomain": "shop.example.com",
                 "currentUrl": "https://shop.example.com/"}  # fmt: skip
    async with inbox_socket(server, token) as inbox, visitor_socket(server, visitor) as widget:
        with caplog.at_level(logging.ERROR, logger="curbe.web.ws"):
            for sock in (inbox, widget):
                for empty in ("", b""):
                    await sock.ws.send_message(empty)
                    answer = await sock.wait_for("error")
                    assert answer["error"]["code"] == "malformed_json", (empty, answer)
            await inbox.send(heartbeat)
            answer = await inbox.wait_for("error")
            assert answer["error"]["code"] == "unsupported_frame", answer
            # and an error echoes a clientMessageId only as the document types it (a string)
            for cmid, echoed in ((-24804, None), ("x" * 129, None), ("cm-1", "cm-1")):
                await widget.send({"type": "message", "clientMessageId": cmid})
                answer = await widget.wait_for("error")
                assert answer.get("clientMessageId") == echoed, (cmid, answer)
            await inbox.send({"type": "ping"})
            await inbox.wait_for("pong")  # still open
        assert [r for r in caplog.records if r.getMessage() == "socket frame failed"] == []
