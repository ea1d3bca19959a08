"""The user-event script's signing (netsuite/suitescript/erpsync_notice_lib.js), run under node: its notice is the
shared shape with the reader's delivery id, and its signature is the Standard Webhooks one the receiver verifies.

N/crypto and N/encode exist only inside NetSuite; the stand-ins below do with node's crypto what Oracle's pages
say those calls do (createSecretKey: the API Secret's clear text read in ``encoding``; Hmac.update: the input in
``inputEncoding``; Hmac.digest: the output in ``outputEncoding``). What is tested is the script's own part: the
signed content ``id.timestamp.body``, the key taken as the whsec_ secret's base64, the ``v1,`` prefix, the body.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from erpsync.change_intake import notice_body, notice_delivery_id
from erpsync.systems.netsuite.webhooks import NetSuiteNoticeSource

LIB = Path(__file__).resolve().parents[2] / "netsuite" / "suitescript" / "erpsync_notice_lib.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# The standardwebhooks package's own test vector (libraries/python/tests/test_webhooks.py).
KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}',
          "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

HARNESS = r"""
const nodeCrypto = require('crypto');
const [LIB_PATH, SECRETS_JSON, CALLS_JSON] = process.argv.slice(-3);
const SECRETS = JSON.parse(SECRETS_JSON);  // API Secret script id -> its clear text
const encodings = {UTF_8: 'utf8', BASE_64: 'base64', HEX: 'hex'};
const N = {
  'N/encode': {Encoding: {UTF_8: 'UTF_8', BASE_64: 'BASE_64', HEX: 'HEX'}},
  'N/crypto': {
    HashAlg: {SHA256: 'SHA256'},
    createSecretKey: ({secret, encoding}) => ({bytes: Buffer.from(SECRETS[secret], encodings[encoding])}),
    createHmac: ({algorithm, key}) => {
      if (algorithm !== 'SHA256') throw new Error('algorithm');
      const h = nodeCrypto.createHmac('sha256', key.bytes);
      return {update: ({input, inputEncoding}) => h.update(input, encodings[inputEncoding || 'UTF_8']),
              digest: ({outputEncoding}) => h.digest(encodings[outputEncoding || 'HEX'])};
    },
  },
};
let lib;
global.define = (deps, factory) => { lib = factory(...deps.map((d) => N[d])); };
require(LIB_PATH);
const calls = JSON.parse(CALLS_JSON);
console.log(JSON.stringify(calls.map(([name, args]) =>
  name === 'notice' ? lib.notice(args[0], args[1], args[2], new Date(args[3]), args[4]) : lib[name](...args))));
"""


def run_lib(calls: list, secrets: dict[str, str]) -> list:
    done = subprocess.run([NODE, "-e", HARNESS, "--", str(LIB), json.dumps(secrets), json.dumps(calls)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_signature_is_the_published_standard_webhooks_vector():
    # The API Secret holds the base64 part of the receiver's whsec_ secret.
    [signature] = run_lib([["signature", [VECTOR[0], VECTOR[1], VECTOR[2], "custsecret_erpsync"]]],
                          {"custsecret_erpsync": KEY.removeprefix("whsec_")})
    assert signature == VECTOR[3]


def test_the_notice_is_the_readers_and_the_receiver_verifies_its_headers():
    modified = datetime(2026, 11, 28, 3, 1, 20, 789000, tzinfo=UTC)
    now = int(datetime.now(UTC).timestamp())
    [made] = run_lib([["notice", ["itemFulfillment", 4512, None, modified.isoformat()]]], {})
    assert made["msgId"] == notice_delivery_id("netsuite", "itemFulfillment", "4512", modified)
    assert json.loads(made["body"]) == json.loads(notice_body("itemFulfillment", "4512", None, modified))
    [headers] = run_lib([["signedHeaders", [made["msgId"], now, made["body"], "custsecret_erpsync"]]],
                        {"custsecret_erpsync": KEY.removeprefix("whsec_")})
    delivery = NetSuiteNoticeSource().authenticate(headers, made["body"].encode(), [KEY], datetime.now(UTC))
    assert (delivery.delivery_id, delivery.topic) == (made["msgId"], "itemFulfillment.changed")


def test_a_price_notice_names_the_item():
    [made] = run_lib([["notice", ["price", "98", "SKU-98", "2026-11-28T03:01:20.000Z"]]], {})
    assert made["msgId"] == "netsuite:price:98:2026-11-28T03:01:20Z"
    assert json.loads(made["body"])["data"] == {"recordType": "price", "id": "98", "externalId": "SKU-98",
                                                "lastModified": "2026-11-28T03:01:20Z"}


def test_a_stock_move_notice_is_the_readers_naming_its_transaction():
    modified = datetime(2026, 11, 28, 3, 1, 20, 250000, tzinfo=UTC)
    cause = {"recordType": "inventoryadjustment", "id": "4513"}
    [made] = run_lib([["notice", ["inventoryItem", "98", "SKU-98", modified.isoformat(), cause]]], {})
    assert made["msgId"] == notice_delivery_id("netsuite", "inventoryItem", "98", modified, "4513")
    assert made["msgId"] == "netsuite:inventoryItem:98:2026-11-28T03:01:20Z:by-4513"
    assert json.loads(made["body"]) == json.loads(notice_body("inventoryItem", "98", "SKU-98", modified, cause))
