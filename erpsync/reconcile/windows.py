"""UTC reconciliation windows: the nightly one, ad-hoc and backfill ones, each widened by an overlap."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from erpsync.errors import ConfigError

# Webhooks can be a day late and clocks disagree by seconds; an hour either side costs little to re-read.
DEFAULT_OVERLAP = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """Records updated in ``[start, end)`` are reconciled; both sides are read over ``[query_start, query_end)``.

    ``start`` and ``end`` are tz-aware UTC; the overlap makes a record updated at a boundary, or stamped in
    another time zone, fall inside two neighbouring windows rather than none.
    """

    start: datetime
    end: datetime
    overlap: timedelta = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ConfigError(f"window.{name}: needs a time zone (naive datetimes are ambiguous)")
            object.__setattr__(self, name, value.astimezone(UTC))
        if self.end <= self.start:
            raise ConfigError("window: until must be after since")
        if self.overlap < timedelta(0):
            raise ConfigError("window.overlap: must not be negative")

    @property
    def query_start(self) -> datetime:
        """Lower bound actually asked of both sides (``start`` minus the overlap)."""
        return self.start - self.overlap

    @property
    def query_end(self) -> datetime:
        """Upper bound actually asked of both sides (``end`` plus the overlap)."""
        return self.end + self.overlap

    def describe(self) -> str:
        """``2026-11-27T00:00:00Z → 2026-11-28T00:00:00Z (±1:00:00)`` for logs and reports."""
        return f"{_z(self.start)} → {_z(self.end)} (±{self.overlap})"


def _z(moment: datetime) -> str:
    # To the second: a window ending "now" would otherwise carry microseconds into every title and log line.
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_moment(text: str, *, tz: str = "UTC") -> datetime:
    """An ISO 8601 date or datetime as tz-aware UTC; a date or a naive time is read in ``tz``.

    ``2026-11-27`` is midnight at the start of that day in ``tz``. ConfigError names what is wrong.
    """
    zone = _zone(tz)
    raw = text.strip()
    try:
        if len(raw) == 10:
            moment = datetime.combine(date.fromisoformat(raw), time(0), tzinfo=zone)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError("since/until: not an ISO 8601 date or datetime") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def nightly_window(
    now: datetime, *, days: int = 1, tz: str = "UTC", overlap: timedelta = DEFAULT_OVERLAP
) -> Window:
    """The ``days`` whole calendar days (in ``tz``) before the one ``now`` falls in, as a UTC window.

    A 02:00 run in Europe/Berlin reconciles yesterday from Berlin's midnight to Berlin's midnight, which
    is 23:00 → 23:00 UTC in winter; DST days are 23 or 25 hours long and handled by the zone rules.
    """
    if now.tzinfo is None:
        raise ConfigError("now: needs a time zone")
    if days < 1:
        raise ConfigError("days: must be at least 1")
    zone = _zone(tz)
    today = now.astimezone(zone).date()
    end = datetime.combine(today, time(0), tzinfo=zone)
    start = datetime.combine(today - timedelta(days=days), time(0), tzinfo=zone)
    return Window(start, end, overlap)


def split_window(window: Window, step: timedelta = timedelta(days=1)) -> Iterator[Window]:
    """Consecutive windows of at most ``step`` covering ``window`` (a backfill run one day at a time)."""
    if step <= timedelta(0):
        raise ConfigError("step: must be positive")
    start = window.start
    while start < window.end:
        end = min(start + step, window.end)
        yield Window(start, end, window.overlap)
        start = end


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"tz: unknown IANA time zone {tz!r}") from None
