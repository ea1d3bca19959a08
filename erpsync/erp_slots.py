"""One limit on concurrent ERP calls shared by every worker and process: C slots held in the ledger's database.

NetSuite counts the requests in flight per account and answers 429 beyond its limit. Every worker takes one of
C slots for the time a request is on the wire, so all of them together never exceed the limit.

- PostgreSQL: session advisory locks ``pg_try_advisory_lock(namespace, slot)``, one pooled connection per
  slot held. The server releases the lock when the connection goes, so a killed process frees its slot at once.
- SQLite (one machine): ``flock`` on C lock files beside the database file; the kernel releases them when the
  process dies.
- No shared store (an in-memory database): C slots within this process only.

Within a process, a finishing call hands its slot straight to a waiting thread, still held in the store: the
ERP's slot is not left idle for an unlock and a lock (two round trips on PostgreSQL). Every MAX_HANDOVERS calls
the slot is given back instead and rested here briefly, so that other processes waiting for one get it.

A request whose caller stops waiting still runs at the ERP: NetSuite carries out a request that arrived even
when the client has gone, and counts it against the limit until it ends. So a slot is not free the moment our
side of a call ends without an answer (``linger``, in seconds, bounds how long the ERP may go on):
- a call that timed out or lost its connection after sending keeps its slot ``linger`` seconds more;
- a holder that died (SIGKILL, a lost machine) frees its lock at once, yet its request may still run. Each
  slot therefore carries a mark in the store, "held", set when a process takes it and cleared when it gives it
  back; the next taker that finds the lock free and the mark still set knows its holder died, and rests the
  slot for ``linger`` seconds (marked in the store, so that every process leaves it) before anyone uses it.

Why not Prefect's global concurrency limit: its clients poll on HTTP 423 with a jittered Retry-After, which
kept about a quarter of the slots busy under contention, and a killed holder keeps its slot until it decays.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx
from sqlalchemy.engine import make_url

from erpsync.db import normalise_url
from erpsync.errors import ConfigError, TransientError

log = logging.getLogger(__name__)

DEFAULT_MAX_WAIT = 120.0  # seconds; longer than a slow request, so a full account delays rather than fails
_FIRST_BACKOFF = 0.001
_MAX_BACKOFF = 0.008  # a slot freed by another process is seen within ~10 ms
# Fairness between processes: after MAX_HANDOVERS calls in a row within this process, a slot is given back and
# left alone here for FAIR_TURN_SECONDS, longer than a waiting process polls (_MAX_BACKOFF), so that one finds it.
# Costs at most 20 ms of one slot per 50 calls (0.4% at 100 ms calls) when no other process waits.
MAX_HANDOVERS = 50
FAIR_TURN_SECONDS = 0.02
# How long the ERP may go on with a request whose caller stopped waiting (the clients pass their own timeout).
DEFAULT_LINGER = 30.0
# Errors after which the request may have reached the ERP and still be running there. A connect error or a pool
# timeout sent nothing, so the slot is free at once.
STILL_RUNNING_AT_ERP: tuple[type[BaseException], ...] = (
    httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class Take(NamedTuple):
    """What the store said to a try for a slot: taken, or not; ``rest_seconds`` > 0 when its holder died and the
    slot is left alone that long (this process then stops asking the store for it until then)."""

    taken: bool
    rest_seconds: float = 0.0


@dataclass
class SlotStats:
    """Counters of one process's slot store, for tests, benchmarks and the chaos run."""

    acquired: int = 0
    timeouts: int = 0
    waited_seconds: float = 0.0
    max_wait_seconds: float = 0.0
    held_seconds: float = 0.0
    handed_over: int = 0  # slots passed from a finishing call to a waiting thread without a round trip
    lingered: int = 0  # calls ended without an answer whose slot was kept while the ERP may still run them
    rested_after_death: int = 0  # slots found resting (or to rest) because a holder died during a call

    def as_dict(self) -> dict[str, float]:
        return {"acquired": self.acquired, "timeouts": self.timeouts, "waited_seconds": round(self.waited_seconds, 4),
                "max_wait_seconds": round(self.max_wait_seconds, 4), "held_seconds": round(self.held_seconds, 4),
                "handed_over": self.handed_over,
                "lingered": self.lingered, "rested_after_death": self.rested_after_death}


class ErpSlots:
    """C slots shared through a backend; ``with slots.hold(): <one ERP request>``. Thread-safe.

    ``limit`` 0 means no limit. ``max_wait`` bounds the wait for a slot: past it, ``TransientError`` (the
    caller's retry policy and task retries take it from there). ``linger``: how long the ERP may still run a
    request whose caller stopped waiting (module docstring); give the client's own timeout.
    """

    def __init__(self, backend: _Backend, limit: int, *, max_wait: float = DEFAULT_MAX_WAIT,
                 linger: float = DEFAULT_LINGER):
        if limit < 0:
            raise ConfigError(f"ERP concurrency limit must be 0 (no limit) or more, got {limit}")
        if linger < 0:
            raise ConfigError(f"ERP slot linger must be 0 or more seconds, got {linger}")
        self.limit = limit
        self.max_wait = max_wait
        self.linger = linger
        self.stats = SlotStats()
        self._backend = backend
        self._held: set[int] = set()  # slots this process holds: never tried again until released
        self._cond = threading.Condition()
        # A released slot goes straight to a thread of this process waiting for one, still held in the backend:
        # no unlock and lock again (two database round trips on PostgreSQL) while the ERP's slot sits idle.
        self._handed: deque[int] = deque()
        self._waiting = 0
        self._streak: dict[int, int] = defaultdict(int)
        self._resting: dict[int, float] = {}  # slot → until when this process leaves it to the others
        self._lingering: set[threading.Timer] = set()

    @classmethod
    def for_database(cls, database_url: str, limit: int, *, name: str = "erp",
                     max_wait: float = DEFAULT_MAX_WAIT, linger: float = DEFAULT_LINGER) -> ErpSlots:
        """Slots kept in the ledger's database (``ERPSYNC_DATABASE_URL``); ``name`` separates ERP accounts."""
        url = make_url(normalise_url(database_url))
        backend_name = url.get_backend_name()
        if limit == 0:
            backend: _Backend = _LocalBackend()
        elif backend_name == "postgresql":
            backend = _PostgresBackend(url.set(drivername="postgresql").render_as_string(hide_password=False),
                                       namespace=_namespace(name))
        elif backend_name == "sqlite" and url.database and url.database != ":memory:":
            digest = hashlib.sha256(name.encode()).hexdigest()[:12]
            backend = _FileBackend(Path(url.database).with_name(Path(url.database).name + ".erp-slots"), digest)
        elif backend_name == "sqlite":
            backend = _LocalBackend()
        else:
            raise ConfigError(f"ERPSYNC_DATABASE_URL: no ERP slot store for backend {backend_name!r}")
        return cls(backend, limit, max_wait=max_wait, linger=linger)

    @classmethod
    def in_process(cls, limit: int, *, max_wait: float = DEFAULT_MAX_WAIT,
                   linger: float = DEFAULT_LINGER) -> ErpSlots:
        """Slots shared by the threads of this process only (a client built without a ledger database)."""
        return cls(_LocalBackend(), limit, max_wait=max_wait, linger=linger)

    @property
    def shared(self) -> bool:
        return not isinstance(self._backend, _LocalBackend)

    def close(self) -> None:
        """Closes the store. A slot still lingering stays marked held there, so the next taker rests it."""
        with self._cond:
            lingering, self._lingering = self._lingering, set()
        for timer in lingering:
            timer.cancel()
        self._backend.close()

    @contextmanager
    def hold(self) -> Iterator[int | None]:
        """Hold one slot for the block; yields its number (None without a limit). When the block raises one of
        STILL_RUNNING_AT_ERP the slot is kept ``linger`` seconds more, as the ERP may still be running the call."""
        if not self.limit:
            yield None
            return
        slot = self.acquire()
        taken = time.monotonic()
        lingering = False
        try:
            yield slot
        except STILL_RUNNING_AT_ERP:
            lingering = self.linger > 0
            raise
        finally:
            if lingering:
                self._release_later(slot, taken)
            else:
                self.release(slot, held_for=time.monotonic() - taken)

    def _release_later(self, slot: int, taken: float) -> None:
        def release() -> None:
            with self._cond:
                self._lingering.discard(timer)
            self.release(slot, held_for=time.monotonic() - taken)

        timer = threading.Timer(self.linger, release)
        timer.daemon = True  # a process may exit meanwhile: the slot's mark in the store then rests it
        with self._cond:
            self.stats.lingered += 1
            self._lingering.add(timer)
        timer.start()

    def acquire(self) -> int:
        start = time.monotonic()
        deadline = start + self.max_wait
        backoff = _FIRST_BACKOFF
        offset = random.randrange(self.limit)  # spread processes over the slots instead of all fighting for 0
        while True:
            with self._cond:
                if self._handed:
                    slot = self._handed.popleft()
                    self._count_acquired(time.monotonic() - start)
                    return slot
            for step in range(self.limit):
                slot = (offset + step) % self.limit
                with self._cond:
                    if slot in self._held or self._resting.get(slot, 0.0) > time.monotonic():
                        continue
                    self._held.add(slot)
                try:
                    take = self._backend.try_take(slot, self.linger)
                except BaseException:
                    self._forget(slot, notify=False)
                    raise
                if take.taken:
                    with self._cond:
                        self._count_acquired(time.monotonic() - start)
                    return slot
                if take.rest_seconds:
                    with self._cond:
                        self.stats.rested_after_death += 1
                        self._resting[slot] = time.monotonic() + take.rest_seconds
                    log.warning("ERP slot %d: its last holder died during a call; left alone %.0fs, as the ERP "
                                "may still be running that call", slot, take.rest_seconds)
                self._forget(slot, notify=False)
            now = time.monotonic()
            if now >= deadline:
                with self._cond:
                    self.stats.timeouts += 1
                raise TransientError(f"ERP concurrency limit: all {self.limit} slots stayed busy for "
                                     f"{self.max_wait:g}s")
            # Jittered so that waiting processes do not retry in lockstep; a release in this process wakes us.
            with self._cond:
                if not self._handed:
                    self._waiting += 1
                    try:
                        self._cond.wait(min(deadline - now, backoff * (0.5 + random.random() / 2)))
                    finally:
                        self._waiting -= 1
            backoff = min(_MAX_BACKOFF, backoff * 2)

    def _count_acquired(self, waited: float) -> None:
        self.stats.acquired += 1
        self.stats.waited_seconds += waited
        self.stats.max_wait_seconds = max(self.stats.max_wait_seconds, waited)

    def release(self, slot: int, *, held_for: float = 0.0) -> None:
        with self._cond:
            self.stats.held_seconds += held_for
            if self._waiting > len(self._handed) and self._streak[slot] < MAX_HANDOVERS:
                self._streak[slot] += 1
                self.stats.handed_over += 1
                self._handed.append(slot)
                self._cond.notify()
                return
            # Every MAX_HANDOVERS calls the slot goes back to the backend and this process's waiters are not
            # woken for it: other processes polling for a slot get their chance.
            fair_turn = self._streak[slot] >= MAX_HANDOVERS
            if fair_turn:
                self._resting[slot] = time.monotonic() + FAIR_TURN_SECONDS
            self._streak[slot] = 0
        try:
            self._backend.give_back(slot)
        finally:
            self._forget(slot, notify=not fair_turn)

    def _forget(self, slot: int, *, notify: bool) -> None:
        with self._cond:
            self._held.discard(slot)
            if notify:
                self._cond.notify()


def _namespace(name: str) -> int:
    """A signed 32-bit key for the first half of the advisory lock, from the slot store's name."""
    value = zlib.crc32(f"erpsync.erp-slots:{name}".encode())
    return value - 2**32 if value >= 2**31 else value


class _Backend:
    def try_take(self, slot: int, linger: float) -> Take:
        """Take ``slot`` if it is free and not resting; a slot whose last holder died is rested ``linger``."""
        raise NotImplementedError

    def give_back(self, slot: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _LocalBackend(_Backend):
    """Only the in-process bookkeeping of ErpSlots: a slot not held here is free."""

    def try_take(self, slot: int, linger: float) -> Take:
        return Take(True)

    def give_back(self, slot: int) -> None:
        pass


class _FileBackend(_Backend):
    """``flock`` on one file per slot. flock belongs to the open file, so each slot keeps its own descriptor
    (ErpSlots makes sure only one thread of this process uses a slot at a time).

    The file's content is the slot's mark, read and written only under the lock: ``held``, ``free``, or
    ``rest <epoch seconds>`` (left alone until then). Wall-clock time, as the processes share one machine."""

    _WIDTH = 32  # every mark is written padded to this width at offset 0, so no write leaves an old tail

    def __init__(self, directory: Path, prefix: str):
        self.directory = directory
        self.prefix = prefix
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the ERP slot folder {directory}: {exc.strerror}") from None

    def _fd(self, slot: int) -> int:
        with self._lock:
            fd = self._fds.get(slot)
            if fd is None:
                path = self.directory / f"{self.prefix}-{slot}.lock"
                fd = self._fds[slot] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            return fd

    def try_take(self, slot: int, linger: float) -> Take:
        fd = self._fd(slot)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Take(False)
        try:
            mark = os.pread(fd, self._WIDTH, 0).decode("ascii", "replace").strip()
            now = time.time()
            if mark == "held":  # the lock was free, so the holder that marked it died during a call
                rest_until = now + linger
                self._mark(fd, f"rest {rest_until:.3f}")
            elif mark.startswith("rest "):
                try:
                    rest_until = float(mark[5:])
                except ValueError:
                    rest_until = 0.0
            else:
                rest_until = 0.0
            if rest_until > now:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return Take(False, rest_until - now)
            self._mark(fd, "held")
            return Take(True)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise

    def give_back(self, slot: int) -> None:
        fd = self._fd(slot)
        try:
            self._mark(fd, "free")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _mark(self, fd: int, mark: str) -> None:
        os.pwrite(fd, mark.ljust(self._WIDTH).encode("ascii"), 0)

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


_MARKS_TABLE = """CREATE TABLE IF NOT EXISTS erpsync_erp_slot (
    namespace integer NOT NULL,
    slot integer NOT NULL,
    held boolean NOT NULL,
    rest_until timestamptz,
    PRIMARY KEY (namespace, slot))"""

# Run under the slot's advisory lock. Every SET expression reads the row as it was: a row still marked held
# belongs to a holder that died, so the slot rests ``linger`` seconds; a resting one stays unheld until then.
_TAKE = """INSERT INTO erpsync_erp_slot AS s (namespace, slot, held) VALUES (%(namespace)s, %(slot)s, true)
ON CONFLICT (namespace, slot) DO UPDATE SET
    held = NOT s.held AND (s.rest_until IS NULL OR s.rest_until <= now()),
    rest_until = CASE WHEN s.held THEN now() + make_interval(secs => %(linger)s) ELSE s.rest_until END
RETURNING held, extract(epoch FROM coalesce(rest_until - now(), interval '0'))"""

_MARKS_TABLE_LOCK = zlib.crc32(b"erpsync.erp-slots:table")

_GIVE_BACK = "UPDATE erpsync_erp_slot SET held = false WHERE namespace = %(namespace)s AND slot = %(slot)s"


class _PostgresBackend(_Backend):
    """Session advisory locks. A held slot keeps its connection; free connections are pooled for reuse.

    The marks live in the table ``erpsync_erp_slot`` of the same database, made on first use (the slots may be
    used before the ledger's own tables exist). Taking a slot costs two round trips, giving it back two: only
    when a slot changes process, as handovers within one process keep it taken."""

    def __init__(self, conninfo: str, namespace: int):
        self.conninfo = conninfo
        self.namespace = namespace
        self._idle: list = []
        self._holding: dict[int, object] = {}
        self._lock = threading.Lock()
        self._table_made = False

    def _connect(self):
        import psycopg

        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise TransientError(f"ERP slot store (PostgreSQL) unavailable: {type(exc).__name__}") from None
        if not self._table_made:
            try:
                # CREATE … IF NOT EXISTS races with itself (two sessions may both create the table's type): one
                # session at a time, under a transaction-scoped lock of a one-key space (apart from the slots').
                with connection.transaction():
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MARKS_TABLE_LOCK,))
                    connection.execute(_MARKS_TABLE)
            except psycopg.Error as exc:
                connection.close()
                raise TransientError(f"ERP slot store (PostgreSQL) unavailable: {type(exc).__name__}") from None
            self._table_made = True
        return connection

    def try_take(self, slot: int, linger: float) -> Take:
        import psycopg

        connection = self._connect()
        params = {"namespace": self.namespace, "slot": slot, "linger": linger}
        try:
            locked = connection.execute("SELECT pg_try_advisory_lock(%(namespace)s, %(slot)s)", params).fetchone()[0]
            take = Take(False)
            if locked:
                held, rest = connection.execute(_TAKE, params).fetchone()
                take = Take(True) if held else Take(False, max(float(rest), 0.001))
                if not held:
                    connection.execute("SELECT pg_advisory_unlock(%(namespace)s, %(slot)s)", params)
        except psycopg.Error as exc:
            connection.close()  # a broken connection holds nothing: the server let its locks go with it
            raise TransientError(f"ERP slot store (PostgreSQL) unavailable: {type(exc).__name__}") from None
        with self._lock:
            if take.taken:
                self._holding[slot] = connection
            else:
                self._idle.append(connection)
        return take

    def give_back(self, slot: int) -> None:
        import psycopg

        with self._lock:
            connection = self._holding.pop(slot)
        params = {"namespace": self.namespace, "slot": slot}
        try:
            # The mark first, in its own statement (committed), then the lock: a taker never sees it held
            # after the lock is free unless this process died.
            connection.execute(_GIVE_BACK, params)
            connection.execute("SELECT pg_advisory_unlock(%(namespace)s, %(slot)s)", params)
        except psycopg.Error:
            connection.close()  # the lock went with the broken connection; the mark rests the slot for the next
            return
        with self._lock:
            self._idle.append(connection)

    def close(self) -> None:
        with self._lock:
            connections = self._idle + list(self._holding.values())
            self._idle, self._holding = [], {}
        for connection in connections:
            connection.close()
