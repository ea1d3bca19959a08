"""`erpsync send` against a real receiver process: each source's payload signed with the receiver's secret is
stored as a delivery with its topic; a wrong secret is refused and said so; bad input is a usage error naming
the argument."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from erpsync.ledger import Ledger
from tests.conftest import REPO
from tests.receiver_proc import running_receiver

SECRETS = {"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "shp-secret-1,shp-secret-2",
           "ERPSYNC_WOOCOMMERCE_WEBHOOK_SECRET": "woo-secret",
           "ERPSYNC_STANDARD_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def erpsync_send(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_WEBHOOK_SECRET") and k != "PREFECT_API_URL"}
    return subprocess.run([sys.executable, "-m", "erpsync", "send", *args], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    home = tmp_path_factory.mktemp("send")
    url = f"sqlite:///{home / 'erpsync.db'}"
    with running_receiver(home, url, SECRETS) as (client, _log):
        ledger = Ledger.connect(url)
        yield str(client.base_url).rstrip("/"), ledger
        ledger.close()


@pytest.mark.parametrize("args, source, topic", [
    (["shopify/orders_create", "--source", "shopify", "--topic", "orders/create"], "shopify", "orders/create"),
    (["woocommerce/order_created", "--source", "woocommerce", "--topic", "order.created"], "woocommerce",
     "order.created"),
    ([None, "--source", "standard"], "standard", "order.created"),
])
def test_a_signed_payload_is_stored_by_the_receiver_with_its_topic(receiver, tmp_path, args, source, topic):
    base, ledger = receiver
    if args[0] is None:
        path = tmp_path / "event.json"
        path.write_text(json.dumps({"type": "order.created", "timestamp": "2026-12-01T10:00:00Z",
                                    "data": {"id": "ord_1", "currency": "USD"}}))
        args = [str(path), *args[1:]]
    done = erpsync_send(*args, "--to", base, env=SECRETS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{base}/webhooks/{source}: HTTP 202" in done.stdout
    event_id = json.loads(done.stdout.split("\n", 1)[1].rsplit("\nnext:", 1)[0])["event_id"]
    event = ledger.get_event(event_id)
    assert (event.source, event.topic) == (source, topic)
    assert f"event-{event_id}" in done.stdout and f"erpsync dlq show {event_id}" in done.stdout


def test_a_secret_the_receiver_does_not_hold_is_refused_and_explained(receiver):
    base, _ = receiver
    done = erpsync_send("shopify/orders_create", "--source", "shopify", "--topic", "orders/create", "--to", base,
                        env={"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "not-the-receivers"})
    assert done.returncode == 1
    assert "HTTP 401" in done.stdout and "ERPSYNC_<SOURCE>_WEBHOOK_SECRET" in done.stdout
    assert "not-the-receivers" not in done.stdout + done.stderr


@pytest.mark.parametrize("args, env, message", [
    (["no-such.json", "--source", "shopify", "--topic", "orders/create"], SECRETS,
     "SAMPLE_OR_FILE: 'no-such.json' is neither a file nor a sample; samples: shopify/fulfillments_create"),
    (["shopify/orders_create", "--source", "magento", "--topic", "orders/create"], SECRETS,
     "--source: unknown source 'magento'; expected one of netsuite, shopify, standard, woocommerce"),
    (["shopify/orders_create", "--source", "shopify"], SECRETS, "--topic: required for shopify"),
    (["shopify/orders_create", "--source", "shopify", "--topic", "orders/create"], {},
     "no webhook secret for shopify: set ERPSYNC_SHOPIFY_WEBHOOK_SECRET"),
    (["shopify/orders_create", "--source", "standard"], SECRETS,
     "a Standard Webhooks payload names its topic in the field 'type'"),
    (["shopify/orders_create", "--source", "shopify", "--topic", "orders/create", "--to", "http://127.0.0.1:9"],
     SECRETS, "--to: no answer from http://127.0.0.1:9/webhooks/shopify"),
])
def test_bad_input_is_a_usage_error_naming_the_argument(args, env, message):
    done = erpsync_send(*args, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_that_is_not_a_json_object_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    done = erpsync_send(str(path), "--source", "shopify", "--topic", "orders/create", env=SECRETS)
    assert done.returncode == 2
    assert f"{path}: expected a JSON object" in done.stderr
