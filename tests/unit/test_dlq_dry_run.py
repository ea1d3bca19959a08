"""`erpsync dlq replay --dry-run` says what a replay would do, without claiming an orchestrator nobody configured."""

from __future__ import annotations

from types import SimpleNamespace

from erpsync.deadletters import HANDLED_IN_RECEIVER, replay


def _event(event_id: int, run: str | None) -> SimpleNamespace:
    return SimpleNamespace(event_id=event_id, flow_run_id=run, reason=SimpleNamespace(label="ErpRejected"))


EVENTS = [_event(1, "run-a"), _event(2, None), _event(3, HANDLED_IN_RECEIVER)]


def test_without_a_run_control_the_lines_say_what_happens_to_the_event() -> None:
    lines: list[str] = []
    result = replay(None, None, EVENTS, rate=1, dry_run=True, progress=lines.append)  # type: ignore[arg-type]
    assert lines == [
        "[1/3] event 1 (ErpRejected): would sync again, in its failed run run-a",
        "[2/3] event 2 (ErpRejected): would sync again, in a new run",
        "[3/3] event 3 (ErpRejected): would not be replayed: handled by the receiver; see its reason",
    ]
    assert not any("reschedule" in line or "dispatch" in line for line in lines)
    assert (result.rescheduled, result.dispatched, [e for e, _ in result.failed]) == ([1], [2], [3])


def test_with_a_run_control_the_lines_name_the_run_rescheduled() -> None:
    lines: list[str] = []
    replay(None, object(), EVENTS[:2], rate=1, dry_run=True, progress=lines.append)  # type: ignore[arg-type]
    assert lines == ["[1/2] event 1 (ErpRejected): would reschedule run run-a",
                     "[2/2] event 2 (ErpRejected): would dispatch a run"]
