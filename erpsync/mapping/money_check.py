"""The money invariant before a push: the total the target will compute from the mapped body equals the source's own.

The target system computes it (its ``System.totals``, e.g. erpsync/systems/netsuite/totals.py).

A record that does not add up is not written: a MappingError (a dead letter) naming both totals, their parts
and the difference, in the transaction's currency, and never a customer value.
"""

from __future__ import annotations

import re
from decimal import Decimal

from erpsync.errors import MappingError
from erpsync.mapping.engine import MappedRecord
from erpsync.ports import Totals, TotalsError
from erpsync.systems import DEFAULT_TARGET, system


def _words(record_type: str) -> str:
    """``salesOrder`` → ``sales order``: the record as a message names it."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", record_type).lower()


def _text(amount: Decimal, places: int) -> str:
    return f"{amount:.{places}f}"


def check_total(record: MappedRecord, ref: str | None = None) -> Totals | None:
    """The body's totals, as the target computes them, when they equal the source total (within the tolerance).

    None when the mapping declares no money section (nothing to compare against).
    """
    expected = record.expected_total
    if expected is None:
        return None
    target = system(record.target or DEFAULT_TARGET)
    if target.totals is None:
        raise MappingError(f"money: {target.name} computes no order totals, so the money check cannot run", field="money")
    try:
        totals = target.totals(record.body, expected.places)
    except TotalsError as exc:
        raise MappingError(f"{ref + ': ' if ref else ''}mapped body: {exc}", field=exc.field) from None
    difference = totals.total - expected.total
    if abs(difference) > expected.tolerance:
        p, c = expected.places, expected.currency
        parts = (f"subtotal {_text(totals.subtotal, p)}, discount {_text(totals.discount, p)}, "
                 f"tax {_text(totals.tax, p)}, shipping {_text(totals.shipping, p)}, "
                 f"handling {_text(totals.handling, p)}")
        tolerance = f" (tolerance {expected.tolerance})" if expected.tolerance else ""
        if expected.negated:  # money.sign: negative, a return: the target's total is minus the source's
            source_total = (f"it must be minus the source's {expected.total_field}, which is "
                            f"{_text(-expected.total, p)} {c}")
        else:
            source_total = f"the source's {expected.total_field} is {_text(expected.total, p)} {c}"
        error = MappingError(
            f"money check: the {_words(record.record_type)} would total {_text(totals.total, p)} {c} in {target.title} ({parts}), "
            f"{source_total}: difference "
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
