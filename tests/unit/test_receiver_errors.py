"""Issue 16 item 5: an unexpected error inside the receiver is logged by type and place, never by its message."""

from __future__ import annotations

import asyncio
import logging

import httpx

from erpsync.ledger import Ledger
from erpsync.receiver.app import create_app, where_raised
from erpsync.receiver.limits import IntakeLimits

PLANTED = '{"email":"jane.doe@example.org"}'


class FaultySource:
    """A source plug-in with a bug whose message quotes the payload, as seen in the attack."""

    name = "faulty"

    def authenticate(self, headers, body, secrets, now):
        raise KeyError(PLANTED)


def test_an_unexpected_error_is_logged_by_type_and_place_never_its_message(tmp_path, caplog):
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    app = create_app(ledger=ledger, dispatcher=None, secrets=lambda _name: ["s"], mappings_dir=tmp_path,
                     limits=IntakeLimits(max_body_bytes=1024), sources={"faulty": FaultySource()})

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as client:
            return await client.post("/webhooks/faulty", content=b"{}", headers={"content-type": "application/json"})

    with caplog.at_level(logging.DEBUG):
        response = asyncio.run(post())  # before the fix the KeyError escaped the app, for the server to print
    ledger.close()
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    logged = [(record.levelname, record.getMessage(), record.exc_info) for record in caplog.records]
    errors = [message for level, message, _ in logged if level == "ERROR"]
    assert errors == [f"POST /webhooks/faulty: unexpected KeyError at test_receiver_errors.py:"
                      f"{FaultySource.authenticate.__code__.co_firstlineno + 1} in authenticate"]
    assert not any(exc_info for _, _, exc_info in logged), "no traceback is attached to a log record"
    assert "jane.doe" not in caplog.text


def test_where_raised_names_the_innermost_frame():
    def inner():
        raise ValueError("secret text")

    try:
        inner()
    except ValueError as exc:
        assert where_raised(exc).startswith("test_receiver_errors.py:")
        assert where_raised(exc).endswith(" in inner")
        assert "secret" not in where_raised(exc)
