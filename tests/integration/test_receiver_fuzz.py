"""Schemathesis against the receiver's own OpenAPI document, over real HTTP to `erpsync serve` as a process:
whatever it is sent, it never answers 5xx, every answer matches the document, and nothing unsigned is stored."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from erpsync.ledger import Ledger
from erpsync.receiver.webhook_sources import SOURCES
from tests.receiver_proc import running_receiver

# CI-friendly: 40 generated requests per operation (/healthz and one webhook route per source).
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    database_url = f"sqlite:///{home / 'ledger.db'}"
    env = {"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "fuzz-secret", "ERPSYNC_WOOCOMMERCE_WEBHOOK_SECRET": "fuzz-secret",
           "ERPSYNC_STANDARD_WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
           "ERPSYNC_RATE_LIMIT_PER_SECOND": "0"}
    with running_receiver(home, database_url, env) as (client, _log):
        yield client, Ledger.connect(database_url)


def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(receiver):
    client, ledger = receiver
    schema = schemathesis.openapi.from_url(str(client.base_url.join("/openapi.json")))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 1 + len(SOURCES)  # /healthz and one webhook route per source

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def fuzz(case):
            response = case.call(base_url=str(client.base_url))
            assert response.status_code < 500, (operation.label, response.text)
            case.validate_response(response)

        fuzz()
    assert ledger.inbox_counts()["events"] == 0, "an unsigned request was stored"
