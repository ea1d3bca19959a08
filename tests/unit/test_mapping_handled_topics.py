"""handled_topics(): the (source, topic) pairs the receiver accepts, kept in step with the mapping files."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.mapping import handled_topics

SHIPPED = Path(__file__).parents[2] / "mappings"


def mapping(source: str, topics: list[str], **changes: Any) -> dict[str, Any]:
    return {
        "source": source,
        "topics": topics,
        "entity": {"type": "order", "id": "{id}", "version": "updated_at"},
        "record_type": "salesOrder",
        "external_id": "o-{id}",
        "fields": [{"source_field": "name", "target_field": "otherRefNum"}],
        **changes,
    }


def write(folder: Path, name: str, content: dict | str, stamp: int | None = None) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    if stamp is not None:  # an explicit mtime: two writes within one clock tick still read as a change
        os.utime(path, ns=(stamp, stamp))
    return path


def test_the_shipped_mappings() -> None:
    topics = handled_topics(SHIPPED)
    assert {("shopify", "orders/create"), ("woocommerce", "order.created"), ("woocommerce", "order.updated"),
            ("standard", "order.created"), ("standard", "order.updated")} <= topics
    assert ("woocommerce", "orders/create") not in topics and ("shopify", "order.created") not in topics


def test_case_files_do_not_count_and_an_absent_folder_handles_nothing(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", mapping("woo", ["order.created"]))
    write(tmp_path, "a_test.yaml", mapping("woo", ["order.deleted"]))
    assert handled_topics(tmp_path) == {("woo", "order.created")}
    assert handled_topics(tmp_path / "absent") == set()


def test_a_change_is_seen_and_the_answer_is_a_copy(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", mapping("woo", ["order.created"]), stamp=1_000_000_000)
    first = handled_topics(tmp_path)
    first.add(("evil", "x"))
    assert handled_topics(tmp_path) == {("woo", "order.created")}
    write(tmp_path, "a.yaml", mapping("woo", ["order.created", "order.updated"]), stamp=2_000_000_000)
    write(tmp_path, "b.yaml", mapping("std", ["order.created"]))
    assert handled_topics(tmp_path) == {("woo", "order.created"), ("woo", "order.updated"), ("std", "order.created")}
    (tmp_path / "b.yaml").unlink()
    assert handled_topics(tmp_path) == {("woo", "order.created"), ("woo", "order.updated")}


def test_a_broken_file_keeps_its_declared_topics_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "good.yaml", mapping("std", ["order.created"]))
    broken = mapping("woo", ["order.created"], fields=[{"source_field": "x", "target_field": "y", "transform": "upercase"}])
    write(tmp_path, "broken.yaml", broken, stamp=1_000_000_000)
    write(tmp_path, "unreadable.yaml", "source: [woo\n")
    write(tmp_path, "no_topics.yaml", {"source": "other", "topics": "not a list"})
    with caplog.at_level(logging.WARNING, logger="erpsync.mapping.loader"):
        for _ in range(3):
            assert handled_topics(tmp_path) == {("std", "order.created"), ("woo", "order.created")}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("broken.yaml" in m and "unknown transform 'upercase'" in m for m in messages) == 1
    assert sum("unreadable.yaml" in m for m in messages) == 1
    # A new breakage of the same file is news again.
    write(tmp_path, "broken.yaml", {**broken, "record_type": ""}, stamp=2_000_000_000)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="erpsync.mapping.loader"):
        handled_topics(tmp_path)
    assert sum("broken.yaml" in r.getMessage() for r in caplog.records) == 1
