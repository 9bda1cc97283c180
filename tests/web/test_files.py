"""Files and images (issue #17): a file is a message of its own, its type found from its bytes,
its thumbnail made upright and bare, fetched back only by who may read the conversation, and
removed from the store with its message (or, never sent, an hour after it came)."""

from __future__ import annotations

import datetime as dt
import io
import urllib.parse
from typing import Any

import httpx
import pytest
from PIL import Image

from storage import queries
from tests.support import (
    ManualClock,
    Server,
    Visitor,
    accept,
    accepted_chat,
    inbox_socket,
    login,
    new_chat,
    new_visitor,
    open_server,
    seed,
    visitor_socket,
    visitor_view,
)

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def image(kind: str, size: tuple[int, int] = (640, 480), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, kind, **save)
    return out.getvalue()


def upload_path(v: Visitor, cid: str) -> str:
    return f"/api/chat/widgets/{v.widget_id}/conversations/{cid}/attachments"


async def send_file(
    client: httpx.AsyncClient,
    path: str,
    data: bytes,
    name: str | None = None,
    content_type: str = "application/octet-stream",
    **headers: str,
) -> httpx.Response:
    sent = {"Content-Type": content_type, **headers}
    if name is not None:
        sent["X-File-Name"] = urllib.parse.quote(name)
    return await client.post(path, content=data, headers=sent)


def stored(srv: Server, tenant_id: str, attachment_id: str) -> set[str]:
    """The variants of the file in the store."""
    folder = srv.services.files.root / tenant_id / attachment_id  # type: ignore[attr-defined]
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


async def test_a_visitors_image_reaches_the_inbox_and_both_sides_fetch_it(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    photo = image("PNG")
    async with inbox_socket(server, token) as inbox, server.http(v.token) as visitor:
        r = await send_file(visitor, upload_path(v, cid), photo, "Foto del coche (1).png")
        assert r.status_code == 201, r.text
        message = r.json()
        [attachment] = message["attachments"]
        assert message["text"] == "" and message["senderType"] == "visitor"
        assert attachment == {
            "id": attachment["id"],
            "name": "Foto del coche (1).png",
            "contentType": "image/png",
            "size": len(photo),
            "width": 640,
            "height": 480,
            "thumbnail": True,
        }
        heard = await inbox.wait_for("message_created")
        assert heard["data"]["message"]["attachments"] == [attachment]

        file = f"{upload_path(v, cid)}/{attachment['id']}"
        r = await visitor.get(file)
        assert r.status_code == 200 and r.content == photo
        assert r.headers["content-type"] == "image/png"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-disposition"].startswith("inline;")
        assert "sandbox" in r.headers["content-security-policy"]
        r = await visitor.get(file + "/thumbnail")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(r.content)) as thumb:
            assert thumb.format == "JPEG" and thumb.size == (320, 240)

    async with server.http(token) as agent:
        r = await agent.get(f"/api/chat/conversations/{cid}/attachments/{attachment['id']}")
        assert r.status_code == 200 and r.content == photo
        r = await agent.get(f"/api/chat/conversations/{cid}")
        assert r.json()["messages"][-1]["attachments"] == [attachment]
    # the widget's conversation after a reload carries it too
    assert (await visitor_view(server, v))["messages"][-1]["attachments"] == [attachment]
    assert stored(server, who.tenant_id, attachment["id"]) == {"original", "thumbnail"}
    # stored with its message: no longer the janitor's
    assert (
        await server.run(
            queries.select_due_files, server.services.clock.now() + dt.timedelta(days=1), 10
        )
        == []
    )


async def test_what_a_file_is_comes_from_its_bytes(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    path = upload_path(v, cid)
    async with server.http(v.token) as visitor:
        # a PDF whatever its name and declared type: downloaded, never shown inline
        r = await send_file(visitor, path, PDF, "scan.png", "image/png")
        assert r.status_code == 201, r.text
        [pdf] = r.json()["attachments"]
        assert (pdf["contentType"], pdf["name"], pdf["thumbnail"]) == (
            "application/pdf",
            "scan.png",
            False,
        )
        r = await visitor.get(f"{path}/{pdf['id']}")
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''scan.png"
        assert (await visitor.get(f"{path}/{pdf['id']}/thumbnail")).status_code == 404

        for kind in ("JPEG", "GIF", "WEBP"):
            r = await send_file(visitor, path, image(kind), f"x.{kind.lower()}")
            assert r.status_code == 201, r.text
            assert r.json()["attachments"][0]["contentType"] == f"image/{kind.lower()}"
        # a name is its last part, without control characters; none given: one from the type
        r = await send_file(visitor, path, image("PNG"), "../../etc/pass\x01wd")
        assert r.json()["attachments"][0]["name"] == "passwd"
        r = await send_file(visitor, path, image("JPEG"))
        assert r.json()["attachments"][0]["name"] == "file.jpg"

        before = (await visitor_view(server, v))["lastSeq"]
        refused = [
            (b"<html><script>alert(1)</script></html>", "photo.png", "image/png"),
            (
                b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                "logo.svg",
                "image/svg+xml",
            ),
            (image("PNG")[:60], "cut.png", "image/png"),  # a truncated image
            (image("BMP"), "old.bmp", "image/bmp"),  # an image, not of the list
            (b"PK\x03\x04zipped", "a.zip", "application/zip"),
        ]
        for data, name, kind in refused:
            r = await send_file(visitor, path, data, name, kind)
            assert r.status_code == 415, (name, r.text)
            assert r.json()["error"]["code"] == "unsupported_file", name
        r = await send_file(visitor, path, b"", "empty.pdf")
        assert r.status_code == 422 and r.json()["error"]["code"] == "empty_file", r.text
        r = await send_file(visitor, path, PDF, "x" * 1001)  # headers past their documented length
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_body", r.text
        r = await send_file(visitor, path, PDF, "a.pdf", **{"X-Client-Message-Id": "c" * 129})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_body", r.text
        # a decompression bomb is refused from its header, before any pixel is read
        bomb = io.BytesIO()
        Image.new("1", (8000, 8000)).save(bomb, "PNG")
        r = await send_file(visitor, path, bomb.getvalue(), "bomb.png")
        assert r.status_code == 415, r.text
        assert (await visitor_view(server, v))["lastSeq"] == before  # nothing stored


async def test_an_image_is_shown_upright_and_its_metadata_stays_behind(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v, cid = await accepted_chat(server, who, token)
    exif = Image.Exif()
    exif[0x0112] = 6  # taken with the phone on its side: turn a quarter to show it
    exif[0x010F] = "PhoneMaker"
    photo = image("JPEG", (400, 200), exif=exif.tobytes())
    async with server.http(v.token) as visitor:
        r = await send_file(visitor, upload_path(v, cid), photo, "side.jpg")
        [attachment] = r.json()["attachments"]
        assert (attachment["width"], attachment["height"]) == (200, 400)
        r = await visitor.get(f"{upload_path(v, cid)}/{attachment['id']}/thumbnail")
        with Image.open(io.BytesIO(r.content)) as thumb:
            assert thumb.size == (160, 320)
            assert 0x010F not in thumb.getexif() and 0x0112 not in thumb.getexif()


async def test_files_are_fetched_only_by_who_may_read_the_conversation(server: Server) -> None:
    [who] = await seed(server)
    [other] = await seed(server)
    token, other_token = await login(server, who), await login(server, other)
    v, cid = await accepted_chat(server, who, token)
    async with server.http(v.token) as visitor:
        r = await send_file(visitor, upload_path(v, cid), image("PNG"), "mine.png")
    att = r.json()["attachments"][0]["id"]
    file = f"{upload_path(v, cid)}/{att}"
    stranger = await new_visitor(server, who.widget_id)
    await new_chat(server, stranger)
    async with server.http(stranger.token) as client:
        assert (await client.get(file)).status_code == 404
        assert (await client.get(file + "/thumbnail")).status_code == 404
        r = await send_file(client, upload_path(v, cid), image("PNG"), "into.png")
        assert r.status_code == 404, r.text  # not its conversation: nothing added
    async with server.http() as anonymous:
        assert (await anonymous.get(file)).status_code == 401
        assert (
            await anonymous.get(f"/api/chat/conversations/{cid}/attachments/{att}")
        ).status_code == 401
    async with server.http(other_token) as client:  # another workspace's agent
        assert (
            await client.get(f"/api/chat/conversations/{cid}/attachments/{att}")
        ).status_code == 404
    async with server.http(token) as client:
        r = await client.get(f"/api/chat/conversations/{cid}/attachments/att_0000000000000000")
        assert r.status_code == 404
        # an agent's cookie alone needs the CSRF header to send
        cookies = {"curbe_session": token}
        async with server.http(cookies=cookies) as by_cookie:
            r = await send_file(by_cookie, f"/api/chat/conversations/{cid}/attachments", PDF)
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_required"
    # the refused upload's file goes with the next sweep
    await server.services.janitor.sweep()  # type: ignore[union-attr]
    assert [p.name for p in (server.services.files.root / who.tenant_id).iterdir()] == [att]  # type: ignore[attr-defined]


async def test_an_agent_sends_a_document_and_the_visitor_hears_it(server: Server) -> None:
    [who] = await seed(server)
    token = await login(server, who)
    v = await new_visitor(server, who.widget_id)
    cid = await new_chat(server, v)
    path = f"/api/chat/conversations/{cid}/attachments"
    async with server.http(token) as agent, visitor_socket(server, v) as widget:
        r = await send_file(agent, path, PDF, "Póliza 2027.pdf")
        assert r.status_code == 409, r.text  # WAITING: accept it first
        assert r.json()["error"]["code"] == "conversation_not_open"
        await accept(server, token, cid)
        r = await send_file(agent, path, PDF, "Póliza 2027.pdf", **{"X-Client-Message-Id": "f-1"})
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["senderType"] == "agent" and first["clientMessageId"] == "f-1"
        heard = await widget.wait_for("message_created")
        assert heard["data"]["message"]["attachments"] == first["attachments"]
        # the same upload again (a retry): the same message, one file kept
        r = await send_file(agent, path, PDF, "Póliza 2027.pdf", **{"X-Client-Message-Id": "f-1"})
        assert r.status_code == 201 and r.json() == first, r.text
        r = await agent.get(f"{path}/{first['attachments'][0]['id']}")
        assert r.headers["content-disposition"] == (
            "attachment; filename*=UTF-8''P%C3%B3liza%202027.pdf"
        )
    await server.services.janitor.sweep()  # type: ignore[union-attr]
    kept = [p.name for p in (server.services.files.root / who.tenant_id).iterdir()]  # type: ignore[attr-defined]
    assert kept == [first["attachments"][0]["id"]]


async def test_files_go_with_their_conversations_and_unsent_ones_after_an_hour(
    database_url: str,
) -> None:
    clock = ManualClock()
    async with open_server(database_url, clock=clock, max_upload_bytes=100_000) as server:
        [who] = await seed(server)
        token = await login(server, who)
        v, cid = await accepted_chat(server, who, token)
        async with server.http(v.token) as visitor:
            r = await send_file(visitor, upload_path(v, cid), image("PNG"), "a.png")
            sent = r.json()["attachments"][0]["id"]
            # past the limit: 413, and nothing kept
            big = image("PNG", (2000, 2000), compress_level=0)
            assert len(big) > 100_000
            r = await send_file(visitor, upload_path(v, cid), big, "big.png")
            assert r.status_code == 413, r.text
        # an upload whose message never came (a crash between the two)
        janitor, files = server.services.janitor, server.services.files
        assert janitor is not None
        await server.run(
            queries.expect_file,
            who.tenant_id,
            "att_orphan0000000001",
            clock.now() + dt.timedelta(hours=1),
        )
        await files.put(who.tenant_id, "att_orphan0000000001", "original", b"%PDF-")
        await janitor.sweep()
        assert stored(server, who.tenant_id, "att_orphan0000000001") == {"original"}
        clock.advance(minutes=61)
        await janitor.sweep()
        assert stored(server, who.tenant_id, "att_orphan0000000001") == set()
        assert stored(server, who.tenant_id, sent) == {"original", "thumbnail"}

        # the conversation deleted (as erasure and retention will, issue 18): its messages go
        # with it by cascade, and their files with the next sweep
        async def delete_conversation(connection: Any, conversation_id: str) -> None:
            await connection.execute("DELETE FROM conversations WHERE id = $1", conversation_id)

        await server.run(delete_conversation, cid)
        assert await janitor.sweep() == 1
        assert stored(server, who.tenant_id, sent) == set()
        assert janitor.describe()["files_removed"] >= 2


@pytest.mark.slow
async def test_with_an_s3_bucket_files_live_there(database_url: str) -> None:
    from tests.storage.test_files_s3 import bucket

    async with bucket() as store:
        endpoint = store.base.rsplit("/", 1)[0]
        settings = {
            "s3_endpoint": endpoint,
            "s3_bucket": "curbe-files",
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
        }
        async with open_server(database_url, **settings) as server:
            assert type(server.services.files).__name__ == "S3Files"
            [who] = await seed(server)
            token = await login(server, who)
            v, cid = await accepted_chat(server, who, token)
            photo = image("PNG")
            async with server.http(v.token) as visitor:
                r = await send_file(visitor, upload_path(v, cid), photo, "s3.png")
                assert r.status_code == 201, r.text
                att = r.json()["attachments"][0]["id"]
                r = await visitor.get(f"{upload_path(v, cid)}/{att}")
                assert r.status_code == 200 and r.content == photo
            assert await store.get(who.tenant_id, att, "original") == photo
            assert await store.get(who.tenant_id, att, "thumbnail") is not None

            async def delete_conversation(connection: Any, conversation_id: str) -> None:
                await connection.execute("DELETE FROM conversations WHERE id = $1", conversation_id)

            await server.run(delete_conversation, cid)
            assert server.services.janitor is not None
            assert await server.services.janitor.sweep() == 1
            assert await store.get(who.tenant_id, att, "original") is None
