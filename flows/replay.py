"""Flow `replay-dead-letters`: runs a chosen set of dead letters again, at a bounded rate.

The same selection and replay as `erpsync dlq replay` (erpsync/deadletters.py): each event's failed flow run is
rescheduled, as the UI's Retry does, and runs with the mapping as it is now.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from erpsync.deadletters import DeadLetterFilter, replay, select_dead_letters
from erpsync.errors import ConfigError
from erpsync.ledger import Ledger
from erpsync.settings import Settings
from orchestration.runs import PrefectRunControl


@flow(name="replay-dead-letters", log_prints=False, validate_parameters=True)
def replay_dead_letters(since: str | None = None, until: str | None = None, time_of: str = "failed",
                        source: str | None = None, topic: str | None = None, reason: str | None = None,
                        rate: float = 2.0, limit: int | None = None, dry_run: bool = False) -> dict:
    """Replay dead letters matching the filters, oldest first, at most ``rate`` per second and ``limit`` in all.

    ``since``/``until``: ISO 8601 or an age (``12h``, ``7d``), applied to when events failed (``time_of:
    failed``) or arrived (``received``). ``reason``: an error class, an ERP error code, a lookup table or a field.
    """
    logger = get_run_logger()
    where = DeadLetterFilter.parse(since=since, until=until, time_of=time_of, source=source, topic=topic,
                                   reason=reason)
    if limit is not None and limit < 1:
        raise ConfigError(f"limit: must be at least 1; got {limit}")
    ledger = Ledger.connect(Settings.from_env().database_url)
    runs = None if dry_run else PrefectRunControl.from_prefect_settings()
    try:
        chosen = select_dead_letters(ledger, where, limit=limit)
        logger.info("%d dead letters match (%s); replaying at up to %s per second", len(chosen), where.describe(),
                    rate)
        result = replay(ledger, runs, chosen, rate=rate, dry_run=dry_run, progress=logger.info)
        logger.info(result.summary())
        return result.as_json()
    finally:
        if runs is not None:
            runs.close()
        ledger.close()
