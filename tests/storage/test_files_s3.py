"""The S3-compatible file store (issue #17): requests signed with AWS Signature Version 4, checked
against AWS's own worked examples, then the store against a real S3-compatible server on
loopback (moto's standalone server): put, get, missing, delete of every variant, refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
import trio

from storage.files import EMPTY_SHA256, ORIGINAL, THUMBNAIL, S3Files, StoreError, sign

# AWS's documented example credentials and moment ("Signature Calculations for the
# Authorization Header: Transferring Payload in a Single Chunk", Amazon S3 API reference)
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = dt.datetime(2013, 5, 24, tzinfo=dt.UTC)


def signature(headers: dict[str, str]) -> str:
    return headers["Authorization"].rsplit("Signature=", 1)[1]


def test_a_get_is_signed_as_in_the_aws_example() -> None:
    headers = sign(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        {"Range": "bytes=0-9"},
        EMPTY_SHA256,
        access_key=AWS_KEY,
        secret_key=AWS_SECRET,
        region="us-east-1",
        now=AWS_NOW,
    )
    assert headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={AWS_KEY}/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
    )
    assert signature(headers) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def test_a_put_is_signed_as_in_the_aws_example() -> None:
    body = b"Welcome to Amazon S3."
    headers = sign(
        "PUT",
        "https://examplebucket.s3.amazonaws.com/test$file.text",
        {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
        hashlib.sha256(body).hexdigest(),
        access_key=AWS_KEY,
        secret_key=AWS_SECRET,
        region="us-east-1",
        now=AWS_NOW,
    )
    assert signature(headers) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """An S3-compatible server on loopback for the test; its endpoint."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@asynccontextmanager
async def bucket() -> AsyncIterator[S3Files]:
    with moto_server() as endpoint:
        store = S3Files(endpoint, "curbe-files", access_key="test", secret_key="test")
        with trio.fail_after(30):
            while True:  # until it listens (a condition, not a delay: each try is a request)
                try:
                    r = await store._send("PUT", f"{endpoint}/curbe-files")  # create the bucket
                    break
                except httpx.ConnectError:
                    await trio.sleep(0.05)
        assert r.status_code == 200, r.text
        yield store


@pytest.mark.slow
async def test_the_s3_store_keeps_reads_and_removes_files() -> None:
    async with bucket() as store:
        await store.put("ten_a", "att_1", ORIGINAL, b"%PDF-1.4 original")
        await store.put("ten_a", "att_1", THUMBNAIL, b"\xff\xd8 thumb")
        await store.put("ten_b", "att_1", ORIGINAL, b"another workspace's")
        assert await store.get("ten_a", "att_1", ORIGINAL) == b"%PDF-1.4 original"
        assert await store.get("ten_a", "att_1", THUMBNAIL) == b"\xff\xd8 thumb"
        assert await store.get("ten_a", "att_2", ORIGINAL) is None
        await store.delete("ten_a", "att_1")
        assert await store.get("ten_a", "att_1", ORIGINAL) is None
        assert await store.get("ten_a", "att_1", THUMBNAIL) is None
        assert await store.get("ten_b", "att_1", ORIGINAL) == b"another workspace's"
        await store.delete("ten_a", "att_1")  # nothing left to delete: not an error
        with pytest.raises(ValueError):
            await store.get("../etc", "passwd", ORIGINAL)
        # a bucket that is not there: the store says so rather than losing the file
        missing = S3Files(
            store.base.rsplit("/", 1)[0], "no-such-bucket", access_key="test", secret_key="test"
        )
        with pytest.raises(StoreError):
            await missing.put("ten_a", "att_3", ORIGINAL, b"x")
        # the server's last step lets the store's connections go
        await missing.aclose()
        assert missing.client.is_closed
