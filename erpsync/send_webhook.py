"""`erpsync send`: one payload signed as its source signs it and posted to a receiver, to try a mapping end to end.

The signature is made with the secret the receiver reads (ERPSYNC_<SOURCE>_WEBHOOK_SECRET, or the source's Prefect
Secret block), so what arrives is indistinguishable from a real delivery: the receiver stores it in the inbox and
starts its `sync-event` run. A new delivery id each time, so sending the same file again is a new delivery whose
content the ledger recognises (duplicate), as a resent webhook would be.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from erpsync.errors import ConfigError
from erpsync.receiver.secrets import secret_env_name
from erpsync.receiver.webhook_sources import SOURCES
from erpsync.settings import PROJECT_DIR
from erpsync.sync_file import read_payload

# The vendors' own sample bodies (tests/fixtures/README.md says where each comes from), by `<source>/<name>`:
# a folder of tests/fixtures named after a webhook source holds its samples.
SAMPLES_DIR = PROJECT_DIR / "tests" / "fixtures"
DEFAULT_RECEIVER = "http://127.0.0.1:8600"  # `erpsync serve`'s and the demo's default port


def samples() -> list[str]:
    # An ERP's fixtures folder holds its API's answers, not webhook bodies (its change notices have no vendor sample).
    from erpsync.systems import SYSTEMS

    return sorted(f"{source}/{path.stem}" for source in SOURCES if SYSTEMS[source].kind == "shop"
                  for path in (SAMPLES_DIR / source).glob("*.json"))


def resolve_payload(sample_or_file: str) -> tuple[Path, bytes]:
    """A file's path and bytes, or a sample's (``shopify/orders_create``); ConfigError naming the argument."""
    path = Path(sample_or_file)
    if not path.exists():
        name = sample_or_file.removesuffix(".json")
        if name in samples():
            path = SAMPLES_DIR / f"{name}.json"
        else:
            raise ConfigError(f"SAMPLE_OR_FILE: {sample_or_file!r} is neither a file nor a sample; samples: "
                              f"{', '.join(samples())}")
    return path, read_payload(path)


def signed_headers(source: str, topic: str | None, body: bytes, secret: str, *, shop: str | None = None,
                   delivery_id: str | None = None) -> dict[str, str]:
    """The headers ``source`` would send with ``body``: signature, delivery id and topic, as the receiver reads them."""
    delivery_id = delivery_id or str(uuid.uuid4())
    sender = SOURCES[source]
    if sender.example_topic is not None and not topic:
        raise ConfigError(f"--topic: required for {source}, e.g. {sender.example_topic}")
    return sender.sign(secret, body, topic=topic, delivery_id=delivery_id, shop=shop)


@dataclass(frozen=True)
class Answer:
    url: str
    status: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def lines(self) -> list[str]:
        out = [f"{self.url}: HTTP {self.status}"]
        try:
            parsed = json.loads(self.body)
        except ValueError:
            parsed = None
        out.append(json.dumps(parsed, indent=2) if parsed is not None else self.body)
        event_id = parsed.get("event_id") if isinstance(parsed, dict) else None
        if event_id is not None:
            out.append(f"next: its flow run is event-{event_id} in the Prefect UI; erpsync status, "
                       f"erpsync dlq show {event_id} if it fails")
        elif self.status == 401:
            out.append("the receiver refused the signature: it reads another secret than this command did "
                       "(compare the ERPSYNC_<SOURCE>_WEBHOOK_SECRET of both)")
        return out


def send(sample_or_file: str, *, source: str, topic: str | None, to: str, secrets: Callable[[str], list[str]],
         known_sources: list[str], shop: str | None = None, client: httpx.Client | None = None) -> Answer:
    """Sign the payload with ``source``'s first secret and POST it to the receiver at ``to``; its answer."""
    if source not in known_sources:
        raise ConfigError(f"--source: unknown source {source!r}; expected one of {', '.join(sorted(known_sources))}")
    _, body = resolve_payload(sample_or_file)
    found = secrets(source)
    if not found:
        raise ConfigError(f"no webhook secret for {source}: set {secret_env_name(source)} to the receiver's "
                          f"(or create the Prefect Secret block {source}-webhook-secret)")
    headers = {"Content-Type": "application/json",
               **signed_headers(source, topic, body, found[0], shop=shop)}
    url = to.rstrip("/")
    if "/webhooks/" not in url:
        url = f"{url}/webhooks/{source}"
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--to: expected an http(s) URL of a receiver, e.g. {DEFAULT_RECEIVER}; got {to!r}")
    owned = client is None
    client = client or httpx.Client(timeout=30)
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ConfigError(f"--to: no answer from {url} ({type(exc).__name__}); is the receiver running "
                          f"(erpsync serve, or make demo ARGS=--keep-running)?") from None
    finally:
        if owned:
            client.close()
    return Answer(url, response.status_code, response.text)
