"""Starts `sync-event` flow runs through the Prefect REST API — plain HTTP, so the core never imports Prefect."""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from erpsync.errors import ConfigError, TransientError
from erpsync.retry import RetryPolicy

log = logging.getLogger(__name__)

SYNC_EVENT_DEPLOYMENT = "sync-event/sync-event"
SYNC_BATCH_DEPLOYMENT = "sync-batch/sync-batch"


class Dispatcher(Protocol):
    def dispatch(self, event_id: int) -> str:
        """Start (or find) the run for this inbox event; returns the flow run id."""


class BatchDispatcher(Dispatcher, Protocol):
    def start_batch(self, key: str) -> str:
        """Start a run that takes waiting events from the inbox; returns its flow run id."""

    def active_batches(self) -> list[str]:
        """Batch runs that will still take waiting events."""


def idempotency_key(deployment: str, event_id: int) -> str:
    # Prefect's key is unique per flow, not per deployment: prefix it with the deployment name.
    return f"{deployment}:{event_id}"


class PrefectDispatcher:
    """Creates a flow run of a deployment with the inbox event id as parameter and idempotency key.

    The parameter is only the id: the payload carries customer data and must not reach Prefect.
    """

    # Prefect on SQLite answers 503 while its database is locked by a burst; a few quick retries ride that
    # out instead of leaving the event to the next sweep a minute later.
    DEFAULT_RETRY = RetryPolicy(max_attempts=6, base=0.25, cap=4.0)

    def __init__(self, api_url: str, *, api_key: str | None = None, deployment: str = SYNC_EVENT_DEPLOYMENT,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
                 retry: RetryPolicy | None = None):
        if not api_url:
            raise ConfigError("PREFECT_API_URL: not set; the receiver needs it to start sync-event runs")
        self.deployment = deployment
        # Prefect Cloud (or a server behind auth) wants the key; a local open-source server needs none.
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=timeout, transport=transport,
                                    headers=headers)
        self._deployment_ids: dict[str, str] = {}
        self.retry = retry or self.DEFAULT_RETRY

    def close(self) -> None:
        self._client.close()

    def _resolve_deployment(self, name: str) -> str:
        if name not in self._deployment_ids:
            response = self._request("GET", f"deployments/name/{name}")
            if response.status_code == 404:
                raise TransientError(f"deployment {name!r} not found: run `prefect deploy --all`")
            self._deployment_ids[name] = _json_field(response, "id")
        return self._deployment_ids[name]

    def dispatch(self, event_id: int) -> str:
        return self.retry.call(self._create_run, self.deployment, {"event_id": event_id},
                               idempotency_key(self.deployment, event_id), f"event-{event_id}",
                               describe=f"dispatch of event {event_id}")

    def start_batch(self, key: str) -> str:
        """Start a `sync-batch` run (it takes waiting events from the inbox itself); ``key`` makes it once-only."""
        return self.retry.call(self._create_run, SYNC_BATCH_DEPLOYMENT, {},
                               idempotency_key(SYNC_BATCH_DEPLOYMENT, key), f"batch-{key}",
                               describe="start of a sync-batch run")

    def active_batches(self) -> list[str]:
        """Ids of `sync-batch` runs that are scheduled, pending or running (they will take waiting events)."""
        response = self.retry.call(
            self._request, "POST", "flow_runs/filter",
            json={"deployments": {"name": {"any_": [SYNC_BATCH_DEPLOYMENT.split("/")[1]]}},
                  "flow_runs": {"state": {"type": {"any_": ["SCHEDULED", "PENDING", "RUNNING"]}}},
                  "limit": 50},
            describe="active sync-batch runs",
        )
        return [run["id"] for run in response.json()]

    def _create_run(self, deployment: str, parameters: dict, key: str, name: str) -> str:
        deployment_id = self._resolve_deployment(deployment)
        response = self._request("POST", f"deployments/{deployment_id}/create_flow_run",
                                 json={"parameters": parameters, "idempotency_key": key, "name": name})
        if response.status_code == 404:  # deployment re-created since we looked it up
            self._deployment_ids.pop(deployment, None)
            raise TransientError(f"deployment {deployment!r} changed; retry")
        return _json_field(response, "id")

    def reschedule(self, flow_run_id: str, *, message: str) -> None:
        """Run an existing flow run again under the same id, as "Retry" in the Prefect UI does.

        Used for runs that ended Failed (a replay of a dead letter) or Crashed (a worker was killed): the run
        keeps its parameters, its history and its place as the event's one run.
        """
        self.retry.call(self._reschedule, flow_run_id, message, describe=f"reschedule of flow run {flow_run_id}")

    def _reschedule(self, flow_run_id: str, message: str) -> None:
        response = self._request(
            "POST",
            f"flow_runs/{flow_run_id}/set_state",
            json={"state": {"type": "SCHEDULED", "name": "AwaitingRetry", "message": message}, "force": True},
        )
        if response.status_code == 404:
            raise ConfigError(f"flow run {flow_run_id} does not exist in Prefect")

    def run_states(self, flow_run_ids: list[str]) -> dict[str, str]:
        """{flow run id: state type (COMPLETED, FAILED, CRASHED, RUNNING, …)} for the runs Prefect knows."""
        states: dict[str, str] = {}
        for start in range(0, len(flow_run_ids), 200):
            chunk = flow_run_ids[start:start + 200]
            response = self.retry.call(
                self._request, "POST", "flow_runs/filter",
                json={"flow_runs": {"id": {"any_": chunk}}, "limit": len(chunk)},
                describe="flow run states",
            )
            for run in response.json():
                states[run["id"]] = run.get("state_type") or "UNKNOWN"
        return states

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(f"Prefect API unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Prefect API answered {response.status_code}", status=response.status_code)
        if response.status_code in (401, 403):
            raise ConfigError(f"Prefect API refused our credentials ({response.status_code}): check PREFECT_API_KEY")
        if response.status_code >= 400 and response.status_code != 404:
            raise ConfigError(f"Prefect API answered {response.status_code}: {response.text[:200]}")
        return response


def _json_field(response: httpx.Response, name: str) -> str:
    try:
        return response.json()[name]
    except (ValueError, KeyError, TypeError):
        raise TransientError(f"Prefect API answered {response.status_code} without a JSON {name!r}") from None
