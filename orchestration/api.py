"""One HTTP client for Prefect's REST API: plain httpx, so the processes that only start runs never load Prefect."""

from __future__ import annotations

import httpx

from erpsync.errors import ConfigError, TransientError


def client(api_url: str, *, api_key: str | None = None, timeout: float = 10.0,
           transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """A client rooted at the API (``…/api/``); paths are relative (``flow_runs/filter``)."""
    # Prefect Cloud (or a server behind auth) wants the key; a local open-source server needs none.
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=timeout, transport=transport, headers=headers)


def request(http: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    """The answer, with Prefect's failures sorted: unreachable, 5xx and 429 are transient; refused credentials and
    other 4xx are configuration. 404 is returned: what it means depends on the call."""
    try:
        response = http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise TransientError(f"Prefect API unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(f"Prefect API answered {response.status_code}", status=response.status_code)
    if response.status_code in (401, 403):
        raise ConfigError(f"Prefect API refused our credentials ({response.status_code}): check PREFECT_API_KEY")
    if response.status_code >= 400 and response.status_code != 404:
        raise ConfigError(f"Prefect API answered {response.status_code}: {response.text[:200]}")
    return response


def json_field(response: httpx.Response, name: str) -> str:
    try:
        return response.json()[name]
    except (ValueError, KeyError, TypeError):
        raise TransientError(f"Prefect API answered {response.status_code} without a JSON {name!r}") from None
