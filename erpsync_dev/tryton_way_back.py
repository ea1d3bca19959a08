"""The Tryton demo's way back: the warehouse's shipments and stock in Tryton, back to the shop sandbox.

Not built yet: Tryton's changes are not read into the inbox (docs/tryton.md, "Not built yet"), so the Tryton demo
ends after its ERP check and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from erpsync_dev.stack import LocalStack, StackConfig


def drive_tryton_way_back(config: StackConfig, stack: LocalStack, scenario: dict, *, timeout: float) -> bool:
    print("\nThe way back from Tryton (shipments and stock to the shop) is not built yet: docs/tryton.md, "
          "\"Not built yet\". The demo ends here.", flush=True)
    return True
