"""Dedupe decisions: layers 2 (same content) and 3 (older version) of the four."""

from datetime import UTC, datetime, timedelta

import pytest

from erpsync.dedupe import decide

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("never applied", dict(version=T0, payload_sha256="a", last_version=None, last_payload_sha256=None), "apply"),
        ("newer version", dict(version=T0 + timedelta(seconds=1), payload_sha256="b", last_version=T0,
                               last_payload_sha256="a"), "apply"),
        ("same content again", dict(version=T0, payload_sha256="a", last_version=T0, last_payload_sha256="a"),
         "duplicate"),
        ("same content, later timestamp header is irrelevant", dict(
            version=T0 + timedelta(hours=1), payload_sha256="a", last_version=T0, last_payload_sha256="a"),
         "duplicate"),
        ("older version", dict(version=T0 - timedelta(seconds=1), payload_sha256="b", last_version=T0,
                               last_payload_sha256="a"), "superseded"),
        ("equal version, other content: last write wins", dict(
            version=T0, payload_sha256="b", last_version=T0, last_payload_sha256="a"), "apply"),
        ("this event already applied (re-run after a crash)", dict(
            version=T0, payload_sha256="b", last_version=None, last_payload_sha256=None,
            event_already_applied=True), "duplicate"),
        ("versions across time zones compare as instants", dict(
            version=datetime(2026, 11, 1, 7, 0, tzinfo=__import__("datetime").timezone(timedelta(hours=-5))),
            payload_sha256="b", last_version=T0 + timedelta(minutes=1), last_payload_sha256="a"), "superseded"),
    ],
)
def test_decide(name, kwargs, expected):
    assert decide(**kwargs) == expected, name
