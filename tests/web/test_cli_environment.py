"""``curbe-chat serve`` reads some settings from the environment: each parsed as its field's
type, an unset variable keeping the default written once in ``web.services.Settings``."""

from __future__ import annotations

import pytest

from web.cli import _from_environment
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
