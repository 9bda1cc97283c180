"""``curbe-chat serve`` reads some settings from the environment: each parsed as its field's
type, an unset variable keeping the default written once in ``web.services.Settings``."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from web.cli import ENVIRONMENT, _from_environment
from web.services import Settings


def test_set_variables_are_parsed_as_their_fields_and_unset_ones_keep_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CURBE_LISTEN_BACKLOG", "512")
    monkeypatch.setenv("CURBE_VISITOR_EXPIRY_SECONDS", "2.5")
    monkeypatch.delenv("CURBE_GC_YOUNG_THRESHOLD", raising=False)
    got = _from_environment(
        listen_backlog="CURBE_LISTEN_BACKLOG",
        visitor_expiry_seconds="CURBE_VISITOR_EXPIRY_SECONDS",
        gc_young_threshold="CURBE_GC_YOUNG_THRESHOLD",
    )
    assert got == {"listen_backlog": 512, "visitor_expiry_seconds": 2.5}
    settings = Settings(**got)
    assert settings.gc_young_threshold == 50_000 and settings.listen_backlog == 512


def test_every_variable_serve_reads_is_in_the_operations_table(repo_root: Path) -> None:
    table = (repo_root / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"^\| `(CURBE_[A-Z0-9_]+)` \|", table, flags=re.M))
    assert set(ENVIRONMENT.values()) <= documented, set(ENVIRONMENT.values()) - documented
    for field in ENVIRONMENT:
        assert field in attrs.fields_dict(Settings), field


def test_the_shutdown_grace_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # the image sets CURBE_SHUTDOWN_GRACE_SECONDS; docker stop's timeout is chosen from it
    monkeypatch.setenv("CURBE_SHUTDOWN_GRACE_SECONDS", "12")
    assert Settings(**_from_environment(**ENVIRONMENT)).shutdown_grace_seconds == 12.0


@pytest.mark.parametrize(
    ("host", "public_url", "warned"),
    [
        ("0.0.0.0", None, "http://0.0.0.0:8000"),  # the image without CURBE_PUBLIC_URL
        ("::", None, "http://:::8000"),
        ("0.0.0.0", "https://chat.example.com", None),
        ("127.0.0.1", None, None),  # a development server: its own address works
    ],
)
def test_a_base_url_no_browser_can_reach_is_named(
    host: str, public_url: str | None, warned: str | None
) -> None:
    settings = Settings(host=host, port=8000, public_url=public_url)
    assert settings.unreachable_base_url() == warned
