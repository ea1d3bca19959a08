"""The money invariant before a push: the total NetSuite will compute from the mapped body equals the source's own.

A record that does not add up is not written: a MappingError (a dead letter) naming both totals, their parts
and the difference, in the transaction's currency, and never a customer value.
"""

from __future__ import annotations

from decimal import Decimal

from erpsync.errors import MappingError
from erpsync.mapping.engine import MappedRecord
from erpsync.systems.netsuite.totals import Totals, TotalsError, sales_order_totals


def _text(amount: Decimal, places: int) -> str:
    return f"{amount:.{places}f}"


def check_total(record: MappedRecord, ref: str | None = None) -> Totals | None:
    """The body's NetSuite totals when they equal the source total (within the mapping's tolerance).

    None when the mapping declares no money section (nothing to compare against).
    """
    expected = record.expected_total
    if expected is None:
        return None
    try:
        totals = sales_order_totals(record.body, expected.places)
    except TotalsError as exc:
        raise MappingError(f"{ref + ': ' if ref else ''}mapped body: {exc}", field=exc.field) from None
    difference = totals.total - expected.total
    if abs(difference) > expected.tolerance:
        p, c = expected.places, expected.currency
        parts = (f"subtotal {_text(totals.subtotal, p)}, discount {_text(totals.discount, p)}, "
                 f"tax {_text(totals.tax, p)}, shipping {_text(totals.shipping, p)}, "
                 f"handling {_text(totals.handling, p)}")
        tolerance = f" (tolerance {expected.tolerance})" if expected.tolerance else ""
        error = MappingError(
            f"money check: the sales order would total {_text(totals.total, p)} {c} in NetSuite ({parts}), "
            f"the source's {expected.total_field} is {_text(expected.total, p)} {c}: difference "
            f"{_text(difference, p)} {c}{tolerance}; not written (fix the mapping's money section or rules, "
            f"then retry)",
            field=expected.total_field,
        )
        if ref:
            located = MappingError(f"{ref}: {error}")
            located.field = error.field
            raise located
        raise error
    return totals
