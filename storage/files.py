"""The file store (issue #17): where the bytes of attachments live, behind one small port.

A file is named by its tenant and attachment id (and ``thumbnail`` for an image's small copy),
never by anything a client chose, so no name can reach outside the store. What a file is, who
may read it and when it goes are the database's business (``messages.attachments``,
``file_deletions``); the store only keeps bytes.

:class:`LocalFiles` keeps them on the local disk, in the data folder by default
(``CURBE_FILES_DIR``): every worker of one machine shares it; several machines need a shared
volume. Writes go to a temporary name first and are renamed into place, so a reader never sees
half a file.
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Protocol

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


class LocalFiles:
    """Files under ``root``/<tenant>/<file id>/<variant>."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = pathlib.Path(root)

    def _dir(self, tenant_id: str, file_id: str) -> pathlib.Path:
        if not (_PART.match(tenant_id) and _PART.match(file_id)):
            raise ValueError("not a file of this store")
        return self.root / tenant_id / file_id

    def _path(self, tenant_id: str, file_id: str, variant: str) -> pathlib.Path:
        if variant not in (ORIGINAL, THUMBNAIL):
            raise ValueError("not a variant of a file")
        return self._dir(tenant_id, file_id) / variant

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
