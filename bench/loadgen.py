"""A lean HTTP/1.1 load generator for the intake benchmarks: pre-built requests over keep-alive connections.

The receiver and the load generator share this machine's two cores, so the generator must cost little: a
general-purpose client (httpx) spends more CPU per request than the receiver under test. Requests are built
and signed before the clock starts; each connection sends its share one after the other and reads each answer
(status line, headers, Content-Length body) before the next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int  # 0: the connection failed
    elapsed_ms: float


def build_request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(host: str, port: int, requests: Sequence[bytes], answers: list[Answer]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:  # closed by the server: reconnect for the rest
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            answers.append(Answer(int(status_line.split()[1]), (time.perf_counter() - started) * 1000))
    except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
        answers.extend(Answer(0, 0.0) for _ in range(len(requests) - len(answers)))
    finally:
        writer.close()


async def send_all(url: str, requests: Sequence[bytes], *, connections: int) -> tuple[list[Answer], float]:
    """Send every request over ``connections`` keep-alive connections; (answers, wall seconds)."""
    parts = urlsplit(url)
    shares = [requests[n::connections] for n in range(connections)]
    answers: list[list[Answer]] = [[] for _ in shares]
    started = time.perf_counter()
    await asyncio.gather(*(_connection(parts.hostname, parts.port, share, out)
                           for share, out in zip(shares, answers, strict=True) if share))
    return [a for group in answers for a in group], time.perf_counter() - started


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))], 1)
