"""The docs keep up with the code: every realtime event type is documented with an example."""

from __future__ import annotations

from pathlib import Path

from engine.values import EventType

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_event_type_is_in_the_table_and_has_a_payload_example() -> None:
    text = (DOCS / "events.md").read_text()
    table, _, examples = text.partition("## Payload examples")
    for event_type in EventType:
        assert f"| `{event_type.value}` |" in table, event_type.value
        assert f'"type": "{event_type.value}"' in examples, event_type.value


def test_every_doc_linked_from_the_readme_exists() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"
