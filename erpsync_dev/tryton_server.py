"""A real Tryton server for the tests: a seed database built once, copied and served.

The seed (SQLite, the default) is built on first use and cached under ``.erpsync/tryton/<trytond version>-<seed
digest>/seed.sqlite``: ``trytond-admin`` installs the sale module and what it depends on (about 45 s on a 2-core
machine), then ``populate`` scripts the master data a sale needs through proteus: a company in USD, a fiscal
year with its invoice sequences, the minimal chart of accounts with default receivable and payable accounts, a
product category carrying revenue and expense accounts, the products erpsync's mappings sell (by code, the SKUs
of ``mappings/lookups/sku_to_item.csv`` and the fallback codes below), a guest customer, and the unique indexes
that make erpsync's external ids idempotent (``SEED_INDEXES``). Every server then starts from a copy of that file
(about 5 MB, milliseconds), so a test session pays the build once per trytond version, and a run after that none.

    python -m erpsync_dev.tryton_server seed         # build (or find) the seed, print its path and build time
    python -m erpsync_dev.tryton_server serve DIR    # copy the seed into DIR and serve it until interrupted

With a PostgreSQL server (``--postgres postgresql://postgres@127.0.0.1:5432/test``, or ``postgres_url=``), the seed
is a template database on it (``erpsync_tryton_seed_<key>``, built once, about twice as long as on SQLite) and
each server gets a copy made by ``CREATE DATABASE … TEMPLATE`` (under a second), dropped when the server stops.
That is the backend for more than one call at a time: trytond's threads share one SQLite connection.

The admin login and password here are those of a local, throwaway database; a real Tryton's come from the
environment (``ERPSYNC_TRYTON_*``, erpsync/systems/tryton/settings.py).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import httpx
import psycopg

from erpsync.errors import ConfigError
from erpsync_dev.processes import ProcessGroup, free_port, interrupt_on_signals, venv_script

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPOSITORY / ".erpsync" / "tryton"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "erpsync-local-admin"  # a local throwaway database's, never a real one's
ADMIN_EMAIL = "admin@example.com"
COMPANY_NAME = "erpsync Demo Company"
# The party an order without a customer email is booked to (as NetSuite's web-store customer 110 is).
GUEST_PARTY_CODE = "erpsync-guest"
# Products the mappings' money section sends for what has no SKU of its own (docs/tryton.md, "Mapping").
FALLBACK_PRODUCTS = {
    "ERPSYNC-CUSTOM": "Custom item",
    "ERPSYNC-GIFT-CARD": "Gift card",
    "ERPSYNC-TIP": "Tip",
    "ERPSYNC-SHIPPING": "Shipping",
    "ERPSYNC-DISCOUNT": "Discount",
    "ERPSYNC-SALES-TAX": "Sales tax",
    "ERPSYNC-DUTIES": "Duties",
}
# Tryton's sale and shipment `reference` is an ordinary Char: five simultaneous "search, then create" upserts of
# one reference made five sales. erpsync keeps its external id there, so the database refuses a second row with
# the same one, and the writer turns that refusal into "the other writer won" (erpsync/systems/tryton/sales.py).
# Party codes are unique in Tryton itself (party.party's code_uniq). NULLs stay allowed: sales made in Tryton.
SEED_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS erpsync_sale_reference_unique ON sale_sale (reference)",
    "CREATE UNIQUE INDEX IF NOT EXISTS erpsync_shipment_out_reference_unique ON stock_shipment_out (reference)",
)
# Bump when populate() changes what it makes: the cache key includes it, so an old seed is not reused.
SEED_LAYOUT = "1"


def seed_products() -> dict[str, str]:
    """code → name of every product the seed holds: the SKUs the mappings know, then the fallback codes."""
    products: dict[str, str] = {}
    with open(REPOSITORY / "mappings" / "lookups" / "sku_to_item.csv", newline="") as table:
        for row in csv.DictReader(table):
            products[row["sku"]] = row["sku"]
    products.update(FALLBACK_PRODUCTS)
    return products


def seed_key() -> str:
    """The cache folder's name: the trytond version and a digest of what the seed holds."""
    spec = json.dumps({"layout": SEED_LAYOUT, "products": seed_products(), "indexes": SEED_INDEXES,
                       "modules": ["sale"]}, sort_keys=True)
    return f"{version('trytond')}-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Seed:
    path: Path  # the seeded SQLite file
    build_seconds: float | None  # None when it came from the cache
    timings: dict[str, float]  # of the build that made it: trytond-admin, populate


def server_config(directory: Path, port: int | None = None, *, postgres_url: str | None = None,
                  queue_worker: bool = False) -> str:
    """A trytond configuration serving the SQLite databases in ``directory`` (``NAME.sqlite``), or the databases
    of the PostgreSQL server of ``postgres_url``; with ``queue_worker``, tasks Tryton may defer (a confirmed sale's
    processing among them) go to its queue, for a ``trytond-worker``."""
    database = [f"uri = {_server_uri(postgres_url)}"] if postgres_url else ["uri = sqlite://", f"path = {directory}"]
    lines = ["[database]", *database, "",
             # No cache to wait out: a setting written beside the running server is seen at once.
             "[cache]", "clean_timeout = 0", ""]
    if port is not None:
        lines += ["[web]", f"listen = 127.0.0.1:{port}", ""]
    if queue_worker:
        lines += ["[queue]", "worker = True", ""]
    return "\n".join(lines)


def seed_database(cache: Path | None = None) -> Seed:
    """The seed database, built on first use; concurrent callers wait for one build rather than make two."""
    root = Path(os.environ.get("ERPSYNC_TRYTON_CACHE", cache or DEFAULT_CACHE))
    key = seed_key()
    target = root / key
    seed = target / "seed.sqlite"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if seed.exists():
            return Seed(seed, None, _read_timings(target))
        started = time.monotonic()
        timings = _build(target)
        return Seed(seed, time.monotonic() - started, timings)


def _read_timings(target: Path) -> dict[str, float]:
    try:
        return json.loads((target / "build.json").read_text())
    except (OSError, ValueError):
        return {}


def _server_uri(postgres_url: str) -> str:
    """postgresql://user@host:port/anydb → postgresql://user@host:port/ (trytond adds each database's name)."""
    match = re.match(r"(postgresql://[^/]+)", postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    if not match:
        raise ConfigError(f"not a postgresql:// URL: {postgres_url.split('@')[-1]!r}")
    return match.group(1) + "/"


def _postgres(postgres_url: str) -> psycopg.Connection:
    return psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def seed_postgres(postgres_url: str) -> str:
    """The seeded template database on the PostgreSQL server of ``postgres_url``, built on first use (one build at a
    time, under an advisory lock); its name."""
    template = "erpsync_tryton_seed_" + re.sub(r"[^a-z0-9]", "_", seed_key().lower())
    with _postgres(postgres_url) as admin:
        admin.execute("SELECT pg_advisory_lock(hashtext(%s))", (template,))
        try:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone():
                return template
            building = template + "_build"
            admin.execute(f'DROP DATABASE IF EXISTS "{building}"')
            admin.execute(f'CREATE DATABASE "{building}"')
            work = DEFAULT_CACHE / f"postgres-build-{os.getpid()}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            _build_in(work, building, postgres_url)
            admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
            shutil.rmtree(work, ignore_errors=True)
            return template
        finally:
            admin.execute("SELECT pg_advisory_unlock(hashtext(%s))", (template,))


def _build(target: Path) -> dict[str, float]:
    work = target.with_name(target.name + f".build-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "seed.sqlite").touch()
    timings = _build_in(work, "seed", None)
    (work / "build.json").write_text(json.dumps(timings))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(work, target)
    return timings


def _build_in(work: Path, database: str, postgres_url: str | None) -> dict[str, float]:
    """trytond-admin, populate and the unique indexes, on ``database`` (SQLite in ``work``, or on PostgreSQL)."""
    config = work / "trytond.conf"
    config.write_text(server_config(work, postgres_url=postgres_url))
    password_file = work / "admin-password"
    password_file.write_text(ADMIN_PASSWORD)
    env = {**os.environ, "TRYTONPASSFILE": str(password_file)}
    timings: dict[str, float] = {}
    started = time.monotonic()
    _run([venv_script("trytond-admin"), "-c", str(config), "-d", database, "-u", "sale",
          "--activate-dependencies", "--email", ADMIN_EMAIL], env, work / "trytond-admin.log")
    timings["trytond_admin_seconds"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    _run([sys.executable, "-m", "erpsync_dev.tryton_server", "populate", str(config), database], env,
         work / "populate.log")
    timings["populate_seconds"] = round(time.monotonic() - started, 2)
    password_file.unlink()
    if postgres_url:
        with psycopg.connect(_server_uri(postgres_url) + database, autocommit=True) as db:
            for statement in SEED_INDEXES:
                db.execute(statement)
    else:
        with contextlib.closing(sqlite3.connect(work / f"{database}.sqlite")) as db:
            for statement in SEED_INDEXES:
                db.execute(statement)
            db.commit()
    return timings


def _run(argv: list[str], env: dict[str, str], log: Path) -> None:
    with open(log, "wb") as out:
        code = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPOSITORY,
                              stdin=subprocess.DEVNULL).returncode
    if code:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ConfigError(f"building the Tryton seed database: {Path(argv[0]).name} exited with code {code}; "
                          f"see {log}:\n{tail}")


def populate(config_file: str, database: str) -> None:
    """The master data a sale needs, made through proteus in this process (the seed build runs it in a child)."""
    from proteus import config as proteus_config

    # First: trytond picks its database backend (SQLite or PostgreSQL) from the configuration when its modules are
    # first imported, and the helpers below import them.
    proteus_config.set_trytond(database=database, config_file=config_file)
    from proteus import Model
    from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, get_accounts
    from trytond.modules.account_invoice.tests.tools import set_fiscalyear_invoice_sequences
    from trytond.modules.company.tests.tools import create_company
    from trytond.modules.currency.tests.tools import get_currency

    Party = Model.get("party.party")
    company_party = Party(name=COMPANY_NAME)
    company_party.save()
    create_company(party=company_party, currency=get_currency("USD"))
    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear())
    fiscalyear.click("create_period")
    create_chart()
    accounts = get_accounts()

    Category = Model.get("product.category")
    category = Category(name="Sold through erpsync", accounting=True)
    category.account_revenue = accounts["revenue"]
    category.account_expense = accounts["expense"]
    category.save()
    Uom = Model.get("product.uom")
    unit, = Uom.find([("name", "=", "Unit")])
    Template = Model.get("product.template")
    from decimal import Decimal
    for code, name in seed_products().items():
        template = Template(name=name, code=code, type="goods" if code not in FALLBACK_PRODUCTS else "service",
                            salable=True, list_price=Decimal("10.00"), default_uom=unit, sale_uom=unit,
                            account_category=category)
        template.save()
    guest = Party(name="Web store guest", code=GUEST_PARTY_CODE)
    guest.addresses[0].street = "1 Web Street"
    guest.addresses[0].city = "Springfield"
    guest.save()


# --- serving --------------------------------------------------------------------------------------------------


@dataclass
class RunningTryton:
    url: str  # http://127.0.0.1:PORT/
    database: str
    database_file: Path | None  # the SQLite file; None on PostgreSQL
    login: str = ADMIN_LOGIN
    password: str = ADMIN_PASSWORD


def served_database(database: str, port: int, postgres_url: str | None) -> str:
    """The name ``tryton_server`` serves ``database`` under: on PostgreSQL a copy of its own per port, so two
    servers on one PostgreSQL never share a database."""
    return f"{database}_{port}" if postgres_url else database


@contextlib.contextmanager
def tryton_server(directory: Path, *, database: str = "erpsync", seed: Seed | None = None,
                  group: ProcessGroup | None = None, postgres_url: str | None = None,
                  port: int | None = None, queue_worker: bool = False) -> Iterator[RunningTryton]:
    """A ``trytond`` process serving a fresh copy of the seed database as ``database``, stopped on exit.

    On PostgreSQL (``postgres_url``) the copy is a database made from the seeded template, with a name of its own
    (``database`` plus the port), dropped on exit. The database is preloaded (``-d``): on 8.0 a login as the first
    request to a database the server has not loaded yet fails (KeyError 'res.user'). ``port``: where it listens (a
    free one by default; the demo's stack names it so its workers' settings are known before the server starts).
    ``queue_worker``: Tryton's task queue on, and a ``trytond-worker`` (one process) beside the server working it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    database_file: Path | None = None
    if postgres_url:
        template = seed_postgres(postgres_url)
        database = served_database(database, port, postgres_url)
        with _postgres(postgres_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
            admin.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
    else:
        seed = seed or seed_database()
        database_file = directory / f"{database}.sqlite"
        shutil.copyfile(seed.path, database_file)
    config = directory / "trytond.conf"
    config.write_text(server_config(directory, port, postgres_url=postgres_url, queue_worker=queue_worker))
    own_group = group is None
    group = group or ProcessGroup(directory, dict(os.environ), REPOSITORY)
    name = f"trytond-{database}"
    try:
        group.start(name, [venv_script("trytond"), "-c", str(config), "-d", database])
        if queue_worker:
            group.start(f"trytond-worker-{database}", [venv_script("trytond-worker"), "-c", str(config), "-d",
                                                       database, "-n", "1"])
        url = f"http://127.0.0.1:{port}/"
        _wait_until_serving(group, name, url, database)
        yield RunningTryton(url, database, database_file)
    finally:
        if own_group:
            group.stop()
        if postgres_url:
            with _postgres(postgres_url) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _wait_until_serving(group: ProcessGroup, name: str, url: str, database: str, timeout: float = 60.0) -> None:
    """Until a login to ``database`` succeeds: the server listens and has loaded the database's pool."""
    deadline = time.monotonic() + timeout
    request = {"method": "common.db.login", "params": [ADMIN_LOGIN, {"password": ADMIN_PASSWORD}, "en"], "id": 1}
    while time.monotonic() < deadline:
        group.check_alive()
        try:
            answer = httpx.post(f"{url}{database}/rpc/", json=request, timeout=5.0)
            if answer.status_code == 200 and "result" in answer.json():
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise ConfigError(f"{name} did not accept a login at {url}{database}/rpc/ within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erpsync_dev.tryton_server", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("seed", help="build the seed database (or find it in the cache); print its path")
    serve = commands.add_parser("serve", help="serve a copy of the seed database until interrupted")
    serve.add_argument("directory", type=Path)
    serve.add_argument("--database", default="erpsync")
    serve.add_argument("--postgres", metavar="URL", help="serve a copy of a PostgreSQL template instead of SQLite "
                       "(postgresql://user@host:port/db; any database the user can connect to)")
    populate_command = commands.add_parser("populate", help="(the seed build's own step) make the master data")
    populate_command.add_argument("config")
    populate_command.add_argument("database")
    args = parser.parse_args(argv)
    if args.command == "populate":
        populate(args.config, args.database)
        return 0
    started = time.monotonic()
    seed = seed_database() if getattr(args, "postgres", None) is None else None
    if seed is not None:
        print(json.dumps({"seed": str(seed.path), "built_seconds": seed.build_seconds, "build": seed.timings,
                          "seconds": round(time.monotonic() - started, 2)}), flush=True)
    if args.command == "serve":
        interrupt_on_signals()
        started = time.monotonic()
        with tryton_server(args.directory, database=args.database, seed=seed, postgres_url=args.postgres) as running:
            print(json.dumps({"url": running.url, "database": running.database,
                              "start_seconds": round(time.monotonic() - started, 2)}), flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
