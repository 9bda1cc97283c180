"""The QA recorder's pure parts (``qa/``): frame and slide HTML, the ffmpeg script, the report, the
case list. No browser and no server here: ``make qa`` is the full run.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from qa.media import (
    Panel,
    Shot,
    concat_list,
    frame_html,
    make_video,
    slide_html,
    slug,
    summary_html,
)
from qa.run import CASES, CaseResult, report_markdown, short_error


def tiny_png(rgb: tuple[int, int, int] = (37, 99, 235), size: int = 16) -> bytes:
    """A valid ``size``×``size`` single-colour PNG, written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_slug_makes_short_file_names() -> None:
    assert slug("Accept → Connected with Javier Lazo!") == "accept-connected-with-javier-lazo"
    assert slug("¿¿??") == "frame"
    assert len(slug("x" * 100)) == 40


def test_frame_html_escapes_the_caption_and_embeds_both_screenshots() -> None:
    markup = frame_html(
        badge="CASE 4 · 1",
        caption="<img src=x onerror=alert(1)> Connected with Javier Lazo",
        panels=[Panel("Agent — /inbox", tiny_png()), Panel("Visitor 1 — <b>", tiny_png())],
        tone="fail",
    )
    assert "&lt;img src=x onerror=alert(1)&gt; Connected with Javier Lazo" in markup
    assert "<img src=x" not in markup
    assert markup.count('src="data:image/png;base64,') == 2
    assert "Visitor 1 — &lt;b&gt;" in markup
    assert "#ef4444" in markup  # the failure colour


def test_slides_say_the_case_and_the_verdict() -> None:
    slide = slide_html(kicker="CASE 4 OF 8", title="Agent accepts", lines=["within 2 s"])
    assert "CASE 4 OF 8" in slide and "<li>within 2 s</li>" in slide
    passed = summary_html([(1, "New widget", "passed", 4.0), (2, "Visitors", "passed", 3.0)])
    assert "All 8 cases passed" in passed
    failed = summary_html([(1, "New widget", "passed", 4.0), (2, "Visitors", "failed", 3.0)])
    assert "Some cases did not pass" in failed and "✗ failed" in failed


def test_concat_list_holds_each_frame_and_repeats_the_last() -> None:
    shots = [Shot(Path("/a/01-title.png"), 2.5), Shot(Path("/a/02-it's.png"), 3.0, case=1)]
    script = concat_list(shots).splitlines()
    assert script == [
        "ffconcat version 1.0",
        "file '/a/01-title.png'",
        "duration 2.50",
        "file '/a/02-it'\\''s.png'",
        "duration 3.00",
        "file '/a/02-it'\\''s.png'",
    ]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_make_video_stitches_frames_into_an_mp4(tmp_path: Path) -> None:
    shots = []
    for n, rgb in enumerate([(37, 99, 235), (34, 197, 94)], 1):
        path = tmp_path / f"{n:02d}-frame.png"
        path.write_bytes(tiny_png(rgb, size=31))  # odd: the filter makes it even
        shots.append(Shot(path, 0.4))
    out = tmp_path / "qa-cases.mp4"
    make_video(shots, out)
    assert out.stat().st_size > 0
    assert out.read_bytes()[4:8] == b"ftyp"
    assert not (tmp_path / "qa-cases.ffconcat").exists()


def test_report_lists_every_case_with_its_steps_and_frames() -> None:
    results = [
        CaseResult(1, "New widget", ("Active",), "passed", ["paste"], ["03-case-1-a.png"], ["A"]),
        CaseResult(2, "Visitors", (), "failed", ["look"], ["09-case-2-failed.png"], error="boom"),
        CaseResult(3, "Start chat", (), "skipped", error="not run: it builds on case(s) 2"),
    ]
    text = report_markdown(
        results,
        started=dt.datetime(2026, 11, 29, 13, 20, tzinfo=dt.UTC),
        seconds=34.2,
        setup=["Database: embedded"],
        observations=["a note"],
        video="qa-cases.mp4",
    )
    assert text.startswith("# Curbe Chat — QA cases 1–8")
    assert "**FAILED**: 1 of 3 cases passed in 34 s" in text
    assert "[qa-cases.mp4](qa-cases.mp4)" in text
    assert "## ✅ Case 1 — New widget" in text and "## ❌ Case 2 — Visitors" in text
    assert "- [03-case-1-a.png](03-case-1-a.png) A" in text
    assert "```\nboom\n```" in text
    assert "- a note" in text
    ok = report_markdown(
        results[:1],
        started=dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
        seconds=1,
        setup=[],
        observations=[],
        video=None,
    )
    assert "**PASSED**" in ok and "- none" in ok


def test_the_eight_cases_are_registered_in_order_and_build_only_on_earlier_ones() -> None:
    assert [c.number for c in CASES] == list(range(1, 9))
    for c in CASES:
        assert all(n < c.number for n in c.needs), c
        assert c.title and c.checks


def test_short_error_keeps_the_first_lines() -> None:
    exc = AssertionError("\n".join(f"line {n}" for n in range(20)))
    assert short_error(exc, 3) == "AssertionError: line 0\nline 1\nline 2\n…"
