"""The file store (issue #17): where the bytes of attachments live, behind one small port.

A file is named by its tenant and attachment id (and ``thumbnail`` for an image's small copy),
never by anything a client chose, so no name can reach outside the store. What a file is, who
may read it and when it goes are the database's business (``messages.attachments``,
``file_deletions``); the store only keeps bytes.

:class:`LocalFiles` keeps them on the local disk, in the data folder by default
(``CURBE_FILES_DIR``): every worker of one machine shares it; several machines need a shared
volume. Writes go to a temporary name first and are renamed into place, so a reader never sees
half a file.

:class:`S3Files` keeps them in a bucket of an S3-compatible service (AWS S3, MinIO, Ceph, R2…),
path-style, each request signed with AWS Signature Version 4 (:func:`sign`, written out here:
four HMACs over a canonical request, checked against AWS's own worked example in the tests)
and sent with httpx, which runs on Trio.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import pathlib
import re
import urllib.parse
from typing import Protocol

import httpx
import trio

# what a name part may hold: our ids ("ten_…", "att_…") and the variant names below
_PART = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ORIGINAL = "original"
THUMBNAIL = "thumbnail"


class FileStore(Protocol):
    async def put(self, tenant_id: str, file_id: str, variant: str, data: bytes) -> None: ...

    async def get(self, tenant_id: str, file_id: str, variant: str) -> bytes | None:
        """The bytes, or None when there is no such file."""
        ...

    async def delete(self, tenant_id: str, file_id: str) -> None:
        """Every variant of the file; nothing to delete is not an error."""
        ...

    async def aclose(self) -> None:
        """Let go of what the store holds open (its connections); the server's last step."""
        ...


def name(tenant_id: str, file_id: str, variant: str | None = None) -> str:
    """``<tenant>/<file id>[/<variant>]``, or ValueError for parts that are not ours."""
    if not (_PART.match(tenant_id) and _PART.match(file_id)):
        raise ValueError("not a file of this store")
    if variant is None:
        return f"{tenant_id}/{file_id}"
    if variant not in (ORIGINAL, THUMBNAIL):
        raise ValueError("not a variant of a file")
    return f"{tenant_id}/{file_id}/{variant}"


class LocalFiles:
    """Files under ``root``/<tenant>/<file id>/<variant>."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = pathlib.Path(root)

    def _dir(self, tenant_id: str, file_id: str) -> pathlib.Path:
        return self.root / name(tenant_id, file_id)

    def _path(self, tenant_id: str, file_id: str, variant: str) -> pathlib.Path:
        return self.root / name(tenant_id, file_id, variant)

    async def put(self, tenant_id: str, file_id: str, variant: str, data: bytes) -> None:
        path = self._path(tenant_id, file_id, variant)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{variant}.partial")
            with open(partial, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, path)

        await trio.to_thread.run_sync(write)

    async def get(self, tenant_id: str, file_id: str, variant: str) -> bytes | None:
        path = self._path(tenant_id, file_id, variant)

        def read() -> bytes | None:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

        return await trio.to_thread.run_sync(read)

    async def delete(self, tenant_id: str, file_id: str) -> None:
        folder = self._dir(tenant_id, file_id)

        def remove() -> None:
            if not folder.is_dir():
                return
            for child in folder.iterdir():
                child.unlink(missing_ok=True)
            folder.rmdir()

        await trio.to_thread.run_sync(remove)

    async def aclose(self) -> None:
        """Nothing held open: each call opens and closes its own files."""


# --- S3-compatible ------------------------------------------------------------------------------

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    payload_sha256: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    now: dt.datetime,
    service: str = "s3",
) -> dict[str, str]:
    """``headers`` with what AWS Signature Version 4 adds: ``x-amz-date``,
    ``x-amz-content-sha256`` and ``Authorization`` (every header given is signed)."""
    parts = urllib.parse.urlsplit(url)
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    signed = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    signed["host"] = parts.netloc
    signed["x-amz-date"] = stamp
    signed["x-amz-content-sha256"] = payload_sha256
    names = sorted(signed)
    query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    )
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(parts.path or "/", safe="/-_.~"),
            query,
            "".join(f"{k}:{signed[k]}\n" for k in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in headers.items()}
    out["x-amz-date"] = stamp
    out["x-amz-content-sha256"] = payload_sha256
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


class StoreError(RuntimeError):
    """The file store answered something else than success (an S3 error)."""


class S3Files:
    """Files as objects ``<prefix><tenant>/<file id>/<variant>`` of ``bucket`` at ``endpoint``
    (path-style: ``https://s3.example.com/<bucket>/<key>``)."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        prefix: str = "",
        timeout: float = 30.0,
    ) -> None:
        self.base = endpoint.rstrip("/") + "/" + bucket
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.prefix = prefix
        self.client = httpx.AsyncClient(timeout=timeout)

    def _url(self, tenant_id: str, file_id: str, variant: str) -> str:
        return f"{self.base}/{self.prefix}{name(tenant_id, file_id, variant)}"

    async def _send(
        self, method: str, url: str, body: bytes = b"", **headers: str
    ) -> httpx.Response:
        digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        sent = sign(
            method,
            url,
            headers,
            digest,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            now=dt.datetime.now(dt.UTC),
        )
        return await self.client.request(method, url, content=body or None, headers=sent)

    async def put(self, tenant_id: str, file_id: str, variant: str, data: bytes) -> None:
        r = await self._send("PUT", self._url(tenant_id, file_id, variant), data)
        if r.status_code != 200:
            raise StoreError(f"PUT answered {r.status_code}: {r.text[:200]}")

    async def get(self, tenant_id: str, file_id: str, variant: str) -> bytes | None:
        r = await self._send("GET", self._url(tenant_id, file_id, variant))
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise StoreError(f"GET answered {r.status_code}: {r.text[:200]}")
        return r.content

    async def delete(self, tenant_id: str, file_id: str) -> None:
        for variant in (ORIGINAL, THUMBNAIL):
            r = await self._send("DELETE", self._url(tenant_id, file_id, variant))
            if r.status_code not in (200, 204, 404):
                raise StoreError(f"DELETE answered {r.status_code}: {r.text[:200]}")

    async def aclose(self) -> None:
        await self.client.aclose()
