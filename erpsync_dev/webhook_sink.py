"""A local stand-in for a chat webhook (Slack, Mattermost): it records every notification POSTed to it.

The demo points `erpsync alerts apply` at it, so an operator sees what an alert looks like before production, and
the alert tests read what Prefect's automations sent. Each POST is appended to a JSON Lines file as
``{"at", "path", "body"}`` (the body as text) and answered 200; ``GET /healthz`` answers 200 and ``GET /received``
returns the records. Standard library only: it starts in a blink and serves loopback only.

    python -m erpsync_dev.webhook_sink --port 8900 --record .erpsync/demo/alerts/received.jsonl
"""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Notifications are short texts; anything bigger is not one, and must not fill the disk.
MAX_BODY_BYTES = 1_000_000


class _Handler(BaseHTTPRequestHandler):
    server: _SinkServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.send_error(413, "notification too large")
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        self.server.record({"at": datetime.now(UTC).isoformat(timespec="seconds"), "path": self.path,
                            "body": body})
        self._answer(200, b"ok", "text/plain")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/healthz":
            self._answer(200, b"ok", "text/plain")
        elif self.path == "/received":
            self._answer(200, json.dumps(self.server.received()).encode(), "application/json")
        else:
            self.send_error(404)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass  # the record file is the log


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, record_path: Path):
        super().__init__(("127.0.0.1", port), _Handler)
        self.record_path = record_path
        self._lock = threading.Lock()
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record_path.touch()

    def record(self, entry: dict[str, str]) -> None:
        with self._lock, self.record_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    def received(self) -> list[dict[str, str]]:
        with self._lock:
            return read_received(self.record_path)


class WebhookSink:
    """The sink on a background thread of this process (for tests): ``url``, ``received``, ``stop()``."""

    def __init__(self, record_path: Path, *, port: int = 0):
        self._server = _SinkServer(port, Path(record_path))
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    @property
    def received(self) -> list[dict[str, str]]:
        return self._server.received()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_received(record_path: Path) -> list[dict[str, str]]:
    """The records of a sink's file, oldest first ([] when nothing came or the sink never started)."""
    try:
        lines = Path(record_path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def notification_text(record: dict[str, str]) -> str:
    """What a chat tool would show: the ``text`` of Slack-compatible JSON, else the body as it came."""
    try:
        text = json.loads(record["body"]).get("text")
    except (ValueError, AttributeError):
        text = None
    return text if isinstance(text, str) else record["body"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erpsync_dev.webhook_sink", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 to listen on")
    parser.add_argument("--record", type=Path, required=True, help="JSON Lines file each notification is added to")
    args = parser.parse_args(argv)
    server = _SinkServer(args.port, args.record)
    print(f"webhook sink on http://127.0.0.1:{args.port}/alerts, recording to {args.record}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
