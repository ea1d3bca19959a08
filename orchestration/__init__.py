"""Everything erpsync knows of Prefect, the orchestrator: runs, states, automations, events and commands.

The core (``erpsync/``) speaks to it only through ``erpsync.run_control.RunControl`` and the entry points this
package registers (pyproject.toml): ``erpsync.run_control`` (``runs.from_settings``), ``erpsync.webhook_secrets``
(``webhook_secrets.with_block_fallback``) and ``erpsync.commands`` (``commands.register``: ``worker``, ``alerts``).

    api.py              one HTTP client for Prefect's REST API: base URL, key, errors sorted into the error tree
    states.py           Prefect's state types and how they map onto the core's RunState
    runs.py             PrefectRunControl: deployments, idempotency keys, starting, rescheduling, reading runs
    events.py           the event names erpsync emits and matches, and emitting them from a flow
    automations.py      alerts.yaml's automations and the crash-detection automation
    webhook_secrets.py  webhook secrets kept in Prefect Secret blocks
    commands.py         `erpsync worker` and `erpsync alerts`

The modules the receiver loads (api, states, runs, webhook_secrets) need httpx only; Prefect is imported where it
is used, so the receiver stays light and starts no Prefect machinery.
"""
