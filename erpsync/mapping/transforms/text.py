"""Text transforms: case, trimming, replacing, extracting, splitting and joining, padding, truncating to a field length."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from erpsync.mapping.transforms.registry import NoParams, TransformContext, TransformParams, kind, transform


def text_of(value: Any, ctx: TransformContext) -> str:
    if not isinstance(value, str):
        raise ctx.fail(f"expected text, found {kind(value)}")
    return value


@transform("uppercase")
def uppercase(value: Any, params: NoParams, ctx: TransformContext) -> str:
    """Text in upper case.

    Example:
        transform: uppercase
        input: abc-1
        output: ABC-1
    """
    return text_of(value, ctx).upper()


@transform("lowercase")
def lowercase(value: Any, params: NoParams, ctx: TransformContext) -> str:
    """Text in lower case.

    Example:
        transform: lowercase
        input: Jane@Example.COM
        output: jane@example.com
    """
    return text_of(value, ctx).lower()


@transform("title")
def title(value: Any, params: NoParams, ctx: TransformContext) -> str:
    """Text with each word capitalised.

    Example:
        transform: title
        input: usb-c cable 1 m
        output: Usb-C Cable 1 M
    """
    return text_of(value, ctx).title()


class TrimParams(TransformParams):
    chars: str | None = Field(None, description="the characters to strip; default: whitespace")


@transform("trim", TrimParams)
def trim(value: Any, params: TrimParams, ctx: TransformContext) -> str:
    """Text without leading and trailing whitespace (or the given ``chars``).

    Example:
        transform: trim
        input: "  #1001 "
        output: "#1001"

    Example:
        transform: {name: trim, chars: "#"}
        input: "#1001"
        output: "1001"
    """
    return text_of(value, ctx).strip(params.chars)


@transform("string")
def to_string(value: Any, params: NoParams, ctx: TransformContext) -> str:
    """Text, or a number written as text (ids above 2^53 stay exact).

    Example:
        transform: string
        input: 820982911946154508
        output: "820982911946154508"
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ctx.fail(f"expected text or an integer, found {kind(value)}")
    return str(value)


class ReplaceParams(TransformParams):
    old: str = Field(min_length=1, description="the text to replace (literal, not a pattern)")
    new: str = Field("", description="what replaces it")


@transform("replace", ReplaceParams)
def replace(value: Any, params: ReplaceParams, ctx: TransformContext) -> str:
    """Every occurrence of the literal text ``old`` replaced by ``new``.

    Example:
        transform: {name: replace, old: "#", new: "SO-"}
        input: "#1001"
        output: SO-1001
    """
    return text_of(value, ctx).replace(params.old, params.new)


class RegexExtractParams(TransformParams):
    pattern: str = Field(description="a Python regular expression, searched anywhere in the text")
    group: int | str | None = Field(None, description="group number or name; default: the first group, else the match")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regular expression: {exc}") from None
        return pattern


@transform("regex_extract", RegexExtractParams)
def regex_extract(value: Any, params: RegexExtractParams, ctx: TransformContext) -> str:
    """The part of the text a regular expression captures; no match is an error.

    Example:
        transform: {name: regex_extract, pattern: '-(\\d+)GB$'}
        input: IPOD-NANO-8GB
        output: "8"
    """
    compiled = re.compile(params.pattern)
    match = compiled.search(text_of(value, ctx))
    if match is None:
        raise ctx.fail(f"does not match the pattern {params.pattern!r}")
    group = params.group if params.group is not None else (1 if compiled.groups else 0)
    try:
        found = match.group(group)
    except IndexError:  # a group number or name the pattern does not have
        raise ctx.fail(f"the pattern has no group {group!r}") from None
    return found or ""


class SplitParams(TransformParams):
    sep: str = Field(",", min_length=1, description="the separator")
    strip: bool = Field(True, description="trim each part and drop the empty ones")


@transform("split", SplitParams)
def split(value: Any, params: SplitParams, ctx: TransformContext) -> list[str]:
    """A list of the parts of a text (Shopify's comma-separated ``tags``, for example).

    Example:
        transform: {name: split, sep: ","}
        input: "wholesale, vip,"
        output: [wholesale, vip]
    """
    parts = text_of(value, ctx).split(params.sep)
    if params.strip:
        parts = [p.strip() for p in parts if p.strip()]
    return parts


class JoinParams(TransformParams):
    sep: str = Field(", ", description="what goes between the parts")


@transform("join", JoinParams)
def join(value: Any, params: JoinParams, ctx: TransformContext) -> str:
    """One text from a list of texts or numbers.

    Example:
        transform: {name: join, sep: " / "}
        input: [wholesale, vip]
        output: wholesale / vip
    """
    if not isinstance(value, list):
        raise ctx.fail(f"expected a list, found {kind(value)}")
    parts = []
    for n, part in enumerate(value):
        if isinstance(part, bool) or not isinstance(part, (str, int, float, Decimal)):
            raise ctx.fail(f"element [{n}]: expected text or a number, found {kind(part)}")
        parts.append(str(part))
    return params.sep.join(parts)


class PadParams(TransformParams):
    width: int = Field(ge=1, le=1000, description="the length to pad to")
    fill: str = Field(" ", min_length=1, max_length=1, description="one padding character")
    side: Literal["left", "right"] = Field("left", description="where the padding goes")


@transform("pad", PadParams)
def pad(value: Any, params: PadParams, ctx: TransformContext) -> str:
    """Text (or an integer) padded to ``width`` characters; longer text is left as it is.

    Example:
        transform: {name: pad, width: 6, fill: "0"}
        input: "42"
        output: "000042"
    """
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else text_of(value, ctx)
    return text.rjust(params.width, params.fill) if params.side == "left" else text.ljust(params.width, params.fill)


class TruncateParams(TransformParams):
    length: int = Field(ge=1, description="the ERP field's maximum length in characters")
    ellipsis: str = Field("", description="ends a shortened text, within the length (e.g. '…')")

    @field_validator("ellipsis")
    @classmethod
    def _fits(cls, ellipsis: str, info: Any) -> str:
        if len(ellipsis) >= info.data.get("length", 2):
            raise ValueError("the ellipsis must be shorter than the length")
        return ellipsis


@transform("truncate", TruncateParams)
def truncate(value: Any, params: TruncateParams, ctx: TransformContext) -> str:
    """Text cut to an ERP field's length (NetSuite refuses a longer value instead of cutting it).

    Example:
        transform: {name: truncate, length: 10, ellipsis: "…"}
        input: IPod Nano - 8GB
        output: IPod Nano…
    """
    text = text_of(value, ctx)
    if len(text) <= params.length:
        return text
    return text[: params.length - len(params.ellipsis)] + params.ellipsis
