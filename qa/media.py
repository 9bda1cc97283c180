"""Frames, caption slides, the video and the report of a QA run (no image library needed).

A frame is a small HTML page — a caption bar over screenshots of the agent's and the visitor's
browsers side by side — that a third Playwright page renders and screenshots. The HTML builders
here are pure functions (``tests/test_qa_smoke.py`` checks them); :class:`Recorder` renders them
and numbers the files ``NN-case-K-short-name.png`` in the order the video shows them; ``ffmpeg``
stitches them with the concat demuxer, holding each one a few seconds.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FRAME = {"width": 1920, "height": 1080}
HOLD_SLIDE = 2.5  # seconds a caption slide stays on screen
HOLD_STEP = 3.0  # seconds a step frame stays on screen
HOLD_LAST = 4.0

_PALETTE = {"ok": "#22c55e", "info": "#38bdf8", "fail": "#ef4444", "skip": "#a3a3a3"}

_BASE_CSS = """
* { box-sizing: border-box; margin: 0; padding: 0; }
html, body { width: 1920px; height: 1080px; overflow: hidden; }
body { background: #0f172a; color: #e2e8f0; font-family: 'DejaVu Sans', 'Liberation Sans', sans-serif; }
"""


@dataclass(frozen=True)
class Panel:
    """One browser in a frame: a label above its screenshot (PNG bytes)."""

    label: str
    png: bytes


def slug(text: str, limit: int = 40) -> str:
    """``"Accept → Connected!"`` → ``"accept-connected"`` (for file names)."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:limit].rstrip("-") or "frame"


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def frame_html(*, badge: str, caption: str, panels: Sequence[Panel], tone: str = "ok") -> str:
    """A 1920×1080 page: ``badge`` (e.g. "Case 4 · step 2") and ``caption`` over the panels."""
    e = html.escape
    colour = _PALETTE.get(tone, _PALETTE["info"])
    cells = "".join(
        f'<figure><figcaption>{e(p.label)}</figcaption><img src="{_data_url(p.png)}" alt=""></figure>'
        for p in panels
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>{_BASE_CSS}
header {{ height: 206px; padding: 26px 36px 0; border-top: 10px solid {colour}; }}
.badge {{ display: inline-block; font-size: 24px; font-weight: bold; letter-spacing: .04em;
  color: #0f172a; background: {colour}; padding: 6px 16px; border-radius: 8px; }}
.caption {{ margin-top: 16px; font-size: 36px; line-height: 1.25; color: #f8fafc;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }}
main {{ display: flex; gap: 24px; justify-content: center; align-items: flex-start; padding: 0 18px; }}
figure {{ display: flex; flex-direction: column; min-width: 0; }}
figcaption {{ font-size: 19px; color: #94a3b8; height: 34px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }}
img {{ display: block; max-width: 100%; max-height: 820px; border-radius: 6px;
  box-shadow: 0 0 0 1px #334155, 0 8px 28px rgba(0,0,0,.45); background: #fff; }}
</style></head><body>
<header><span class="badge">{e(badge)}</span><p class="caption">{e(caption)}</p></header>
<main>{cells}</main></body></html>"""


def slide_html(
    *, kicker: str, title: str, lines: Sequence[str] = (), tone: str = "info", footer: str = ""
) -> str:
    """A caption slide: a small ``kicker`` ("Case 4 of 8"), a big ``title``, a few ``lines``."""
    e = html.escape
    colour = _PALETTE.get(tone, _PALETTE["info"])
    items = "".join(f"<li>{e(line)}</li>" for line in lines)
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>{_BASE_CSS}
body {{ display: flex; flex-direction: column; justify-content: center; padding: 0 150px;
  border-left: 22px solid {colour}; }}
.kicker {{ font-size: 34px; color: {colour}; font-weight: bold; letter-spacing: .05em; }}
h1 {{ font-size: 68px; line-height: 1.18; margin: 22px 0 40px; color: #f8fafc; }}
ul {{ list-style: none; font-size: 32px; line-height: 1.6; color: #cbd5e1; }}
li::before {{ content: "›  "; color: {colour}; }}
footer {{ position: absolute; bottom: 48px; left: 172px; font-size: 22px; color: #64748b; }}
</style></head><body>
<p class="kicker">{e(kicker)}</p><h1>{e(title)}</h1><ul>{items}</ul>
<footer>{e(footer)}</footer></body></html>"""


def summary_html(rows: Sequence[tuple[int, str, str, float]], *, footer: str = "") -> str:
    """The closing slide: one row per case (number, title, status, seconds)."""
    e = html.escape
    marks = {"passed": ("✓", "ok"), "failed": ("✗", "fail"), "skipped": ("–", "skip")}
    body = ""
    for number, title, status, seconds in rows:
        mark, tone = marks.get(status, ("?", "skip"))
        colour = _PALETTE[tone]
        body += (
            f'<tr><td class="n">{number}</td><td>{e(title)}</td>'
            f'<td class="s" style="color:{colour}">{mark} {e(status)}</td>'
            f'<td class="t">{seconds:.1f} s</td></tr>'
        )
    failed = any(status != "passed" for _, _, status, _ in rows)
    verdict, tone = ("Some cases did not pass", "fail") if failed else ("All 8 cases passed", "ok")
    colour = _PALETTE[tone]
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>{_BASE_CSS}
body {{ padding: 70px 120px; }}
h1 {{ font-size: 56px; color: {colour}; margin-bottom: 36px; }}
table {{ width: 100%; border-collapse: collapse; font-size: 28px; }}
td {{ padding: 15px 12px; border-bottom: 1px solid #1e293b; color: #e2e8f0; }}
td.n {{ width: 60px; color: #94a3b8; font-weight: bold; }}
td.s {{ width: 220px; font-weight: bold; white-space: nowrap; }}
td.t {{ width: 120px; text-align: right; color: #94a3b8; }}
footer {{ position: absolute; bottom: 48px; left: 120px; font-size: 22px; color: #64748b; }}
</style></head><body><h1>{e(verdict)}</h1><table>{body}</table>
<footer>{e(footer)}</footer></body></html>"""


# --- files -----------------------------------------------------------------------------------


@dataclass
class Shot:
    """One numbered PNG of the run and how long the video holds it."""

    path: Path
    seconds: float
    case: int | None = None


@dataclass
class Recorder:
    """Renders frames and slides with ``studio`` (a Playwright page) into ``out_dir``."""

    out_dir: Path
    studio: Any
    shots: list[Shot] = field(default_factory=list)

    def _render(self, name: str, markup: str, seconds: float, case: int | None) -> Path:
        path = self.out_dir / f"{len(self.shots) + 1:02d}-{name}.png"
        self.studio.set_content(markup, wait_until="load")
        self.studio.screenshot(path=str(path))
        self.shots.append(Shot(path, seconds, case))
        return path

    def slide(self, name: str, markup: str, *, case: int | None = None) -> Path:
        return self._render(name, markup, HOLD_SLIDE, case)

    def frame(
        self,
        case: int,
        name: str,
        *,
        badge: str,
        caption: str,
        panels: Sequence[Panel],
        tone: str = "ok",
        seconds: float = HOLD_STEP,
    ) -> Path:
        markup = frame_html(badge=badge, caption=caption, panels=panels, tone=tone)
        return self._render(f"case-{case}-{slug(name)}", markup, seconds, case)

    def closing(self, name: str, markup: str) -> Path:
        return self._render(name, markup, HOLD_LAST, None)


def concat_list(shots: Sequence[Shot]) -> str:
    """An ffmpeg concat-demuxer script holding each file for its seconds.

    The demuxer ignores the last ``duration``, so the last file is listed once more.
    """
    lines = ["ffconcat version 1.0"]
    for shot in shots:
        quoted = str(shot.path).replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {shot.seconds:.2f}"]
    if shots:
        quoted = str(shots[-1].path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def ffmpeg_path() -> str:
    found = shutil.which("ffmpeg")
    if not found:
        raise RuntimeError(
            "ffmpeg is missing: install it with `apt-get install -y ffmpeg` (Debian's package)"
        )
    return found


def make_video(shots: Sequence[Shot], out: Path, *, fps: int = 5) -> None:
    """Stitch ``shots`` into an H.264 MP4 (yuv420p, even dimensions: plays everywhere)."""
    script = out.with_suffix(".ffconcat")
    script.write_text(concat_list(shots))
    try:
        subprocess.run(
            [
                ffmpeg_path(),
                "-y",
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(script),
                "-vf",
                f"fps={fps},scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "stillimage",
                "-crf",
                "22",
                "-movflags",
                "+faststart",
                str(out),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"ffmpeg failed: {exc.stderr.strip()[-2000:]}") from exc
    finally:
        script.unlink(missing_ok=True)
