"""RetryPolicy: which errors are retried, how long it waits, when it gives up, what it logs."""

from __future__ import annotations

import logging

import pytest

from erpsync.errors import ErpRejected, TransientError
from erpsync.retry import RetryPolicy


class Flaky:
    """Raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls.append((args, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def policy(sleeps: list[float], **overrides: object) -> RetryPolicy:
    settings: dict[str, object] = {"max_attempts": 5, "base": 1.0, "cap": 10.0, "max_retry_after": 30.0}
    settings.update(overrides)
    return RetryPolicy(sleep=sleeps.append, random=lambda: 0.5, **settings)  # type: ignore[arg-type]


def test_success_needs_no_retry() -> None:
    sleeps: list[float] = []
    fn = Flaky()
    assert policy(sleeps).call(fn, 1, describe="upsert", key="v") == "done"
    assert fn.calls == [((1,), {"key": "v"})]
    assert sleeps == []


def test_transient_errors_are_retried_with_exponential_full_jitter() -> None:
    sleeps: list[float] = []
    fn = Flaky(TransientError("a"), TransientError("b"), TransientError("c"))
    assert policy(sleeps).call(fn) == "done"
    assert len(fn.calls) == 4
    # random() = 0.5 of min(cap, base * 2**(n-1)) for n = 1, 2, 3
    assert sleeps == [0.5, 1.0, 2.0]


def test_backoff_is_capped() -> None:
    sleeps: list[float] = []
    fn = Flaky(*(TransientError("x") for _ in range(6)))
    policy(sleeps, max_attempts=7, cap=3.0).call(fn)
    assert sleeps == [0.5, 1.0, 1.5, 1.5, 1.5, 1.5]


def test_full_jitter_spans_zero_to_the_backoff() -> None:
    error = TransientError("x")
    assert RetryPolicy(base=2.0, cap=100.0, random=lambda: 0.0).delay(3, error) == 0.0
    assert RetryPolicy(base=2.0, cap=100.0, random=lambda: 0.999).delay(3, error) == pytest.approx(8 * 0.999)


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    sleeps: list[float] = []
    fn = Flaky(TransientError("slow down", retry_after=7, status=429), TransientError("x", retry_after=300, status=503))
    policy(sleeps, max_retry_after=20.0).call(fn)
    # the hint, plus random() * base so a herd told the same second does not return in lockstep
    assert sleeps == [7.5, 20.5]


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    sleeps: list[float] = []
    last = TransientError("third", status=503)
    fn = Flaky(TransientError("first"), TransientError("second"), last)
    with pytest.raises(TransientError) as raised:
        policy(sleeps, max_attempts=3).call(fn)
    assert raised.value is last
    assert len(fn.calls) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "error", [ErpRejected(400, "INVALID_CONTENT", "bad item", "item.items[0].item"), ValueError("bug")]
)
def test_other_errors_are_not_retried(error: Exception) -> None:
    sleeps: list[float] = []
    fn = Flaky(error)
    with pytest.raises(type(error)):
        policy(sleeps).call(fn)
    assert len(fn.calls) == 1
    assert sleeps == []


def test_one_attempt_means_no_retry() -> None:
    sleeps: list[float] = []
    with pytest.raises(TransientError):
        policy(sleeps, max_attempts=1).call(Flaky(TransientError("x")))
    assert sleeps == []


def test_each_retry_is_logged_with_the_description_and_status(caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []
    fn = Flaky(TransientError("upsert salesOrder/eid:SO-1: HTTP 429", status=429, retry_after=1))
    with caplog.at_level(logging.WARNING, logger="erpsync.retry"):
        policy(sleeps).call(fn, {"email": "someone@example.com"}, describe="upsert salesOrder/eid:SO-1")
    [record] = caplog.records
    message = record.getMessage()
    assert "upsert salesOrder/eid:SO-1" in message
    assert "attempt 1 of 5" in message
    assert "status 429" in message
    assert "someone@example.com" not in message


def test_giving_up_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="erpsync.retry"), pytest.raises(TransientError):
        policy([], max_attempts=2).call(Flaky(TransientError("a"), TransientError("b")), describe="get")
    assert [r.getMessage().split(" (")[0].split(":")[0] for r in caplog.records] == [
        "get failed",
        "get failed after 2 attempt(s), giving up",
    ]


@pytest.mark.parametrize("settings", [{"max_attempts": 0}, {"base": -1.0}, {"cap": -1.0}, {"max_retry_after": -1.0}])
def test_nonsense_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**settings)  # type: ignore[arg-type]
