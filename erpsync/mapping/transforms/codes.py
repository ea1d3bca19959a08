"""Code transforms: ISO 4217 currency check, booleans, enum maps (``paid → Paid In Full``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from erpsync.mapping.transforms.registry import TransformContext, TransformParams, kind, transform

# ISO 4217 active codes (funds and precious metals left out: an order is not paid in XAU).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
    CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD
    HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
    PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY
    TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)


class CurrencyParams(TransformParams):
    allowed: list[str] | None = Field(None, description="the currencies the ERP account has; default: any ISO 4217 code")

    @field_validator("allowed")
    @classmethod
    def _iso(cls, allowed: list[str] | None) -> list[str] | None:
        unknown = [code for code in allowed or () if code not in ISO_4217]
        if unknown:
            raise ValueError(f"not ISO 4217 currency codes: {', '.join(unknown)}")
        return allowed


@transform("currency", CurrencyParams)
def currency(value: Any, params: CurrencyParams, ctx: TransformContext) -> str:
    """An ISO 4217 currency code, checked (and upper-cased); an unknown or unsupported code is an error.

    Example:
        transform: currency
        input: usd
        output: USD

    Example:
        transform: {name: currency, allowed: [USD, CAD]}
        input: EUR
        error: "currency 'EUR' is not one of USD, CAD"
    """
    if not isinstance(value, str):
        raise ctx.fail(f"expected a currency code, found {kind(value)}")
    code = value.strip().upper()
    if code not in ISO_4217:
        shown = repr(code) if len(code) <= 3 and code.isalpha() else "value"
        raise ctx.fail(f"{shown} is not an ISO 4217 currency code")
    if params.allowed is not None and code not in params.allowed:
        raise ctx.fail(f"currency {code!r} is not one of {', '.join(params.allowed)}")
    return code


class BooleanParams(TransformParams):
    true_values: list[str] = Field(["true", "yes", "y", "1", "t", "on"], description="texts read as true (any case)")
    false_values: list[str] = Field(["false", "no", "n", "0", "f", "off", ""], description="texts read as false (any case)")


@transform("boolean", BooleanParams)
def boolean(value: Any, params: BooleanParams, ctx: TransformContext) -> bool:
    """true or false, from a JSON boolean, 0/1, or a text such as yes/no.

    Example:
        transform: boolean
        input: "Yes"
        output: true

    Example:
        transform: {name: boolean, true_values: [taxable], false_values: [exempt]}
        input: exempt
        output: false
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in (t.lower() for t in params.true_values):
            return True
        if lowered in (f.lower() for f in params.false_values):
            return False
        raise ctx.fail(f"not a yes/no value (true: {', '.join(params.true_values)}; false: {', '.join(params.false_values)})")
    raise ctx.fail(f"expected a boolean, found {kind(value)}")


_NO_DEFAULT: Any = object()


class MapParams(TransformParams):
    values: dict[str, Any] = Field(min_length=1, description="source code → ERP value")
    default: Any = Field(None, description="the value for codes not listed; without it they are an error")

    def has_default(self) -> bool:
        return "default" in self.model_fields_set


@transform("map", MapParams)
def enum_map(value: Any, params: MapParams, ctx: TransformContext) -> Any:
    """An ERP value for each source code (an enum map); an unlisted code is an error naming the allowed ones.

    Example:
        transform: {name: map, values: {paid: Paid In Full, pending: Pending Approval}}
        input: paid
        output: Paid In Full

    Example:
        transform: {name: map, values: {paid: Paid In Full}}
        input: voided
        error: "'voided' is not mapped (allowed: paid)"

    Example:
        transform: {name: map, values: {paid: Paid In Full}, default: Pending Approval}
        input: authorized
        output: Pending Approval
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ctx.fail(f"a mapped code must be text or an integer, found {kind(value)}")
    key = str(value)
    if key in params.values:
        return params.values[key]
    if params.has_default():
        return params.default
    shown = repr(key) if len(key) <= 40 else "code"
    raise ctx.fail(f"{shown} is not mapped (allowed: {', '.join(params.values)})")
