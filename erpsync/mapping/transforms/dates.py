"""Date and time transforms: parse a timestamp with its zone, output it in the ERP's format and the account's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from erpsync.mapping.transforms.registry import TransformContext, TransformParams, kind, transform


def check_zone(tz: str | None) -> str | None:
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r} (use an IANA name such as America/New_York)") from None
    return tz


class MomentParams(TransformParams):
    tz: str | None = Field(
        None,
        description="IANA zone to express the moment in (the ERP account's); default: the file's `timezone:`, "
        "else the timestamp's own offset",
    )
    assume_tz: str | None = Field(None, description="IANA zone of timestamps that carry no offset; default: refuse them")
    input_format: str | None = Field(
        None, max_length=100, description="strptime pattern of the input, when it is not ISO 8601"
    )
    format: str | None = Field(None, max_length=100, description="strftime pattern of the output")

    @field_validator("tz", "assume_tz")
    @classmethod
    def _known_zone(cls, tz: str | None) -> str | None:
        return check_zone(tz)


def moment_of(value: Any, params: MomentParams, ctx: TransformContext) -> datetime:
    """The instant a value denotes, in the zone the output should use."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            if params.input_format is not None:
                moment = datetime.strptime(value.strip(), params.input_format)
            else:
                moment = datetime.fromisoformat(value.strip())
        except ValueError:
            expected = f"the format {params.input_format!r}" if params.input_format else "an ISO 8601 timestamp"
            raise ctx.fail(f"not {expected}") from None
    else:
        raise ctx.fail(f"expected an ISO 8601 timestamp, found {kind(value)}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        if params.assume_tz is None:
            raise ctx.fail("timestamp has no UTC offset, so its date is ambiguous (set assume_tz)")
        moment = moment.replace(tzinfo=ZoneInfo(params.assume_tz))
    zone = params.tz or ctx.timezone
    if zone is not None:
        try:
            moment = moment.astimezone(ZoneInfo(zone))
        except (OverflowError, ValueError):  # year 1 or 9999 pushed past the calendar's ends
            raise ctx.fail("timestamp out of range") from None
    return moment


@transform("date", MomentParams)
def to_date(value: Any, params: MomentParams, ctx: TransformContext) -> str:
    """A timestamp → the calendar date in the ERP's format (default NetSuite's ``YYYY-MM-DD``).

    The date depends on the zone: 2021-12-31T19:00:00-05:00 is the 31st in New York and the 1st in UTC.
    Without ``tz`` (here or as the file's ``timezone:``) the date is the one the timestamp itself states
    (the shop's local date). A plain date (``2024-05-02``) passes through.

    Example:
        transform: date
        input: "2021-12-31T19:00:00-05:00"
        output: "2021-12-31"

    Example:
        transform: {name: date, tz: Europe/Paris}
        input: "2021-12-31T19:00:00-05:00"
        output: "2022-01-01"

    Example:
        transform: {name: date, input_format: "%d/%m/%Y", assume_tz: UTC, format: "%m/%d/%Y"}
        input: 31/12/2021
        output: 12/31/2021
    """
    if isinstance(value, str) and params.input_format is None:
        try:
            plain = date.fromisoformat(value.strip())
        except ValueError:
            plain = None
        if plain is not None and len(value.strip()) == 10:
            return plain.strftime(params.format) if params.format else plain.isoformat()
    moment = moment_of(value, params, ctx)
    return moment.strftime(params.format) if params.format else moment.date().isoformat()


@transform("datetime", MomentParams)
def to_datetime(value: Any, params: MomentParams, ctx: TransformContext) -> str:
    """A timestamp → ISO 8601 with offset (NetSuite REST's form), in the account's zone if given.

    Example:
        transform: {name: datetime, tz: America/Los_Angeles}
        input: "2024-05-02T10:15:00-04:00"
        output: "2024-05-02T07:15:00-07:00"

    Example:
        transform: {name: datetime, tz: UTC}
        input: "2024-05-02T10:15:00-04:00"
        output: "2024-05-02T14:15:00Z"
    """
    moment = moment_of(value, params, ctx)
    if params.format:
        return moment.strftime(params.format)
    text = moment.isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z" if moment.utcoffset() == UTC.utcoffset(None) else text
