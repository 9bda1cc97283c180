"""What an uploaded file is (issue #17), found from its bytes, never from its name or the type
the client declared: an image Pillow opens as PNG, JPEG, GIF or WebP (and nothing else), or a
PDF by its ``%PDF-`` header. Anything else (SVG, HTML, scripts, archives…) is refused, so a file
served back can never be a page that runs in our origin. An image gets a thumbnail, re-encoded
(its metadata, GPS included, left behind) and turned upright by its EXIF orientation.

Runs in a worker thread (:func:`trio.to_thread.run_sync`) under ``Services.file_checks``.
"""

from __future__ import annotations

import io
import re
import unicodedata
import urllib.parse
import warnings

import attrs
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
PDF = "application/pdf"
#: What may be sent, by content: the documented allow-list (docs/api.md, "Files and images").
ALLOWED_TYPES = (*IMAGE_TYPES.values(), PDF)
MAX_PIXELS = 40_000_000  # past this an image is refused (a decompression bomb, or just too big)
THUMBNAIL_SIDE = 320
MAX_NAME = 200

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class Refused(Exception):
    """Not a file we take: 415 ``unsupported_file``."""


@attrs.frozen
class Examined:
    content_type: str
    width: int | None = None
    height: int | None = None
    thumbnail: bytes | None = None  # a JPEG, for an image


def examine(data: bytes) -> Examined:
    """What ``data`` is, or :class:`Refused`."""
    if data.startswith(b"%PDF-"):
        return Examined(PDF)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(IMAGE_TYPES)) as image:
                kind = IMAGE_TYPES[str(image.format)]
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise Refused("the image is too large")
                image.seek(0)  # an animation: its first frame
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                flat = Image.new("RGB", upright.size, "white")
                rgba = upright.convert("RGBA")
                flat.paste(rgba, mask=rgba.getchannel("A"))
                out = io.BytesIO()
                flat.save(out, "JPEG", quality=82, optimize=True)
                shown_w, shown_h = (height, width) if _turned(image) else (width, height)
                return Examined(kind, shown_w, shown_h, out.getvalue())
    except Refused:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        KeyError,
        TypeError,
    ) as exc:
        raise Refused("not an image or a PDF we can take") from exc


def _turned(image: Image.Image) -> bool:
    """Whether the EXIF orientation turns the image a quarter (width and height swap)."""
    try:
        return image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:  # a broken EXIF block: shown as stored
        return False


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def file_name(header: str | None, content_type: str) -> str:
    """The name to show and download the file by, from the ``X-File-Name`` header (UTF-8,
    percent-encoded): its last path part, without control characters, at most 200 characters;
    ``file`` with the type's extension when none was given."""
    raw = urllib.parse.unquote(header or "", errors="replace")
    raw = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", _UNSAFE.sub("", raw)).strip().strip(".")
    if not name:
        name = "file." + content_type.rsplit("/", 1)[-1].replace("jpeg", "jpg")
    return name[:MAX_NAME]
