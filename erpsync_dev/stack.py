"""A whole local erpsync on loopback: Prefect server, worker(s), receiver, ERP and shop sandbox, each a
separate process. `erpsync demo`, the end-to-end tests, `make bench` and `make chaos` all start it the same way.

By default everything is on SQLite and one worker runs (the demo). `make chaos` scales it out: the ledger and
Prefect's own database on PostgreSQL, several workers on one pool, and an ERP sandbox that injects faults.
With ``erp="tryton"`` the ERP is a real ``trytond`` (erpsync_dev/tryton_server.py) instead of the NetSuite sandbox,
and the workers write to it through ``mappings/tryton``.
"""

from __future__ import annotations

import base64
import secrets
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from erpsync.db import normalise_url
from erpsync.errors import ConfigError
from erpsync.settings import PROJECT_DIR, private_folder
from erpsync.systems.netsuite.client import NetSuiteSettings
from erpsync_dev.processes import ProcessGroup, python_module, tail, venv_script
from erpsync_dev.tryton_server import ADMIN_LOGIN, ADMIN_PASSWORD, served_database, tryton_server
from erpsync_dev.webhook_sink import read_received

SANDBOX_CLIENT_ID = "sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
SHOP_ACCESS_TOKEN = "shpat_sandbox"
ERPS = ("netsuite", "tryton")
TRYTON_DATABASE = "erpsync"


@dataclass
class StackConfig:
    home: Path
    prefect_port: int = 4200
    receiver_port: int = 8600
    erp_port: int = 8700  # the NetSuite sandbox's, or trytond's
    shop_port: int = 8800
    # The ERP the orders go to: "netsuite" (the sandbox) or "tryton" (a real trytond serving a copy of the seed
    # database; its mappings are mappings/tryton unless mappings_dir says otherwise).
    erp: str = "netsuite"
    # Tryton on PostgreSQL: the server of this URL holds the seed template and the served copy. None: SQLite.
    tryton_postgres_url: str | None = None
    # Calls in flight to trytond, all workers together (ERPSYNC_TRYTON_CONCURRENCY_LIMIT). None: 1 on SQLite,
    # whose one connection serves one call at a time (docs/tryton.md), the client's default on PostgreSQL.
    tryton_concurrency: int | None = None
    database_url: str | None = None
    # Prefect's own database; None keeps it in SQLite under home (the demo). For load: a PostgreSQL URL
    # (postgresql+asyncpg://…), see fresh_postgres_databases().
    prefect_database_url: str | None = None
    orders: int = 50
    seed: int = 7
    erp_latency_ms: int = 0
    erp_concurrency: int = 5
    workers: int = 1  # separate worker processes on the one pool
    worker_limit: int = 4  # runs at once per worker
    # `erpsync worker` forks each run from a warm interpreter; False: Prefect's plain process worker (benchmarks)
    forking_workers: bool = True
    erp_items: str = "1-999"  # item ids the ERP sandbox knows
    erp_customers: str = "110=Web Store"  # customers the ERP sandbox has from the start (the guest customer)
    # Faults the ERP sandbox injects into record and query calls (shares of all such calls).
    erp_fault_rate: float = 0.0  # transient 5xx
    erp_fault_statuses: str = "500,503"
    erp_throttle_rate: float = 0.0  # 429 not caused by the concurrency limit
    erp_timeout_rate: float = 0.0  # carried out, answered after erp_timeout_hold_seconds
    erp_timeout_hold_seconds: float = 35.0  # keep it above netsuite_timeout_seconds
    erp_retry_after: float = 1.0
    erp_reject_external_ids: tuple[str, ...] = ()  # writes refused for good: injected dead letters
    erp_fault_seed: int | None = None
    # The connector's side: its timeout, and the limit on ERP calls shared by all workers (None: its default).
    netsuite_timeout_seconds: float | None = None
    netsuite_concurrency: int | None = None
    # Runs send heartbeats and an automation marks a run Crashed when they stop (its worker died with it), so the
    # sweep's recovery re-runs the event. Off for the demo, which kills nothing.
    crash_detection: bool = False
    # A local webhook sink (erpsync_dev/webhook_sink.py) on this port, and alerts.yaml applied to notify it: the demo
    # shows what an alert looks like. None: no sink, no alerts.
    alerts_port: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. ERPSYNC_FAILPOINTS for a test
    mappings_dir: Path | None = None  # default: the checkout's mappings/
    project_dir: Path = PROJECT_DIR
    # A fresh secret per stack: known to the shop sandbox and the receiver only, never printed.
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    woocommerce_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Standard Webhooks secrets are "whsec_" + base64 of the key bytes.
    standard_secret: str = field(default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
    # The ERP's change notices (the way back) are signed the Standard Webhooks way too; the ERP sandbox is told it
    # when notices are switched on (erpsync_dev/way_back.py), so no notice is sent unless asked.
    netsuite_secret: str = field(default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def prefect_ui(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def erp_url(self) -> str:
        return f"http://127.0.0.1:{self.erp_port}"

    @property
    def tryton_database(self) -> str:
        """The database trytond serves (on PostgreSQL a copy named after the port)."""
        return served_database(TRYTON_DATABASE, self.erp_port, self.tryton_postgres_url)

    @property
    def tryton_concurrency_limit(self) -> int | None:
        if self.tryton_concurrency is not None:
            return self.tryton_concurrency
        return None if self.tryton_postgres_url else 1

    def tryton_environment(self) -> dict[str, str]:
        """The workers' ERPSYNC_TRYTON_* settings (the admin of a local, throwaway database)."""
        limit = self.tryton_concurrency_limit
        return {"ERPSYNC_TRYTON_URL": f"{self.erp_url}/", "ERPSYNC_TRYTON_DATABASE": self.tryton_database,
                "ERPSYNC_TRYTON_LOGIN": ADMIN_LOGIN, "ERPSYNC_TRYTON_PASSWORD": ADMIN_PASSWORD,
                **({"ERPSYNC_TRYTON_CONCURRENCY_LIMIT": str(limit)} if limit is not None else {})}

    @property
    def effective_mappings_dir(self) -> Path | None:
        if self.mappings_dir is not None:
            return self.mappings_dir
        return self.project_dir / "mappings" / "tryton" if self.erp == "tryton" else None

    @property
    def shop_url(self) -> str:
        return f"http://127.0.0.1:{self.shop_port}"

    def erp_settings(self) -> NetSuiteSettings:
        """The ERP sandbox's connection, for checks that read it back through its REST API (no shared limit)."""
        return NetSuiteSettings(base_url=self.erp_url, client_id=SANDBOX_CLIENT_ID,
                                client_secret=SANDBOX_CLIENT_SECRET, concurrency_limit=0)

    @property
    def alerts_url(self) -> str:
        """Where the alerts' notifications go: the local webhook sink."""
        return f"http://127.0.0.1:{self.alerts_port}/alerts"

    @property
    def alerts_record(self) -> Path:
        """The sink's record of every notification it received (JSON Lines)."""
        return self.home / "alerts" / "received.jsonl"

    @property
    def cli_env_file(self) -> Path:
        """Settings for running `erpsync` by hand against this stack: ``source`` it in a shell."""
        return self.home / "erpsync.env"

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'erpsync.db'}"

    @property
    def worker_names(self) -> list[str]:
        """Process names of the workers: "worker" alone (the demo), else "worker-1", "worker-2", …"""
        if self.workers < 1:
            raise ConfigError(f"workers: at least 1, got {self.workers}")
        return ["worker"] if self.workers == 1 else [f"worker-{n}" for n in range(1, self.workers + 1)]

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        prefect_home = self.home / "prefect"
        connector = {
            **({"ERPSYNC_NETSUITE_TIMEOUT_SECONDS": f"{self.netsuite_timeout_seconds:g}"}
               if self.netsuite_timeout_seconds else {}),
            **({"ERPSYNC_NETSUITE_CONCURRENCY": str(self.netsuite_concurrency)}
               if self.netsuite_concurrency is not None else {}),
        }
        # Three heartbeats fit in the crash-detection automation's 90 s window (Prefect's default is one per 180 s).
        # `erpsync alerts apply` installs crash detection along with the alerts: runs then need heartbeats too.
        heartbeats = ({"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
                      if self.crash_detection or self.alerts_port else {})
        return {
            **base,
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_API_DATABASE_CONNECTION_URL": (
                self.prefect_database_url or f"sqlite+aiosqlite:///{prefect_home / 'prefect.db'}"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_API_URL": self.prefect_api,
            # Poll for new runs every second instead of every 10 s: events should not wait in the queue.
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_CLI_PROMPT": "false",
            # erpsync's own log lines (outcomes, retries, drift) shown on the flow run in the UI, not only on stdout.
            "PREFECT_LOGGING_EXTRA_LOGGERS": "erpsync",
            "ERPSYNC_HOME": str(self.home),
            "ERPSYNC_PROJECT_DIR": str(self.project_dir),
            "ERPSYNC_DATABASE_URL": self.ledger_url,
            **({"ERPSYNC_MAPPINGS_DIR": str(self.effective_mappings_dir)} if self.effective_mappings_dir else {}),
            "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": self.webhook_secret,
            "ERPSYNC_WOOCOMMERCE_WEBHOOK_SECRET": self.woocommerce_secret,
            "ERPSYNC_STANDARD_WEBHOOK_SECRET": self.standard_secret,
            "ERPSYNC_NETSUITE_WEBHOOK_SECRET": self.netsuite_secret,
            "ERPSYNC_SHOPIFY_SHOP_URL": self.shop_url,
            "ERPSYNC_SHOPIFY_ACCESS_TOKEN": SHOP_ACCESS_TOKEN,
            "ERPSYNC_NETSUITE_BASE_URL": self.erp_url,
            "ERPSYNC_NETSUITE_ACCOUNT_ID": "SANDBOX",
            "ERPSYNC_NETSUITE_CLIENT_ID": SANDBOX_CLIENT_ID,
            "ERPSYNC_NETSUITE_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
            **connector,
            **(self.tryton_environment() if self.erp == "tryton" else {}),
            **heartbeats,
            **({"ERPSYNC_ALERT_WEBHOOK_URL": self.alerts_url} if self.alerts_port else {}),
            **self.extra_env,
        }

    # What `erpsync` run by hand needs to reach this stack: the ledger, both sandboxes, Prefect, the webhook secrets
    # (for `erpsync send`) and the alert sink. Sandbox credentials and this stack's own secrets, never real ones.
    CLI_SETTINGS = ("ERPSYNC_HOME", "ERPSYNC_PROJECT_DIR", "ERPSYNC_DATABASE_URL", "ERPSYNC_MAPPINGS_DIR",
                    "ERPSYNC_SHOPIFY_SHOP_URL", "ERPSYNC_SHOPIFY_ACCESS_TOKEN", "ERPSYNC_NETSUITE_BASE_URL",
                    "ERPSYNC_NETSUITE_ACCOUNT_ID", "ERPSYNC_NETSUITE_CLIENT_ID", "ERPSYNC_NETSUITE_CLIENT_SECRET",
                    "ERPSYNC_SHOPIFY_WEBHOOK_SECRET", "ERPSYNC_WOOCOMMERCE_WEBHOOK_SECRET",
                    "ERPSYNC_STANDARD_WEBHOOK_SECRET", "ERPSYNC_NETSUITE_WEBHOOK_SECRET",
                    "ERPSYNC_ALERT_WEBHOOK_URL", "PREFECT_API_URL", "ERPSYNC_TRYTON_URL", "ERPSYNC_TRYTON_DATABASE",
                    "ERPSYNC_TRYTON_LOGIN", "ERPSYNC_TRYTON_PASSWORD", "ERPSYNC_TRYTON_CONCURRENCY_LIMIT")

    def write_cli_env(self) -> Path:
        """Write ``cli_env_file`` (owner-only: it holds this stack's webhook secrets) and return its path."""
        env = self.environment({})
        lines = ["# erpsync's settings for this local stack: `source` this file, then run erpsync (status, dlq,",
                 "# reconcile, send, alerts apply) against it while it runs. Written at each start.",
                 *(f"export {name}={shlex.quote(env[name])}" for name in self.CLI_SETTINGS if env.get(name))]
        path = self.cli_env_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def erp_sandbox_args(self) -> list[str]:
        c = self
        args = ["--port", str(c.erp_port), "--db", str(c.home / "erp-sandbox.db"),
                "--latency-ms", str(c.erp_latency_ms), "--concurrency", str(c.erp_concurrency),
                "--client-id", SANDBOX_CLIENT_ID, "--client-secret", SANDBOX_CLIENT_SECRET, "--items", c.erp_items,
                "--customers", c.erp_customers]
        if c.erp_fault_rate or c.erp_throttle_rate or c.erp_timeout_rate:
            args += ["--fault-rate", f"{c.erp_fault_rate:g}", "--fault-statuses", c.erp_fault_statuses,
                     "--throttle-rate", f"{c.erp_throttle_rate:g}", "--timeout-rate", f"{c.erp_timeout_rate:g}",
                     "--timeout-hold-seconds", f"{c.erp_timeout_hold_seconds:g}",
                     "--retry-after", f"{c.erp_retry_after:g}"]
            if c.erp_fault_seed is not None:
                args += ["--seed", str(c.erp_fault_seed)]
        if c.erp_reject_external_ids:
            args += ["--reject-external-ids", ",".join(c.erp_reject_external_ids)]
        return args


@contextmanager
def fresh_postgres_databases(admin_url: str, *purposes: str, keep: bool = False) -> Iterator[dict[str, str]]:
    """One new, empty database per purpose on the server of ``admin_url``, dropped afterwards (unless ``keep``).

    Yields {purpose: SQLAlchemy URL}: ``ledger`` gets a psycopg URL (ERPSYNC_DATABASE_URL), ``prefect`` an asyncpg
    one (PREFECT_API_DATABASE_CONNECTION_URL). Unique names, so runs on one server never see each other's rows.
    """
    admin_url = normalise_url(admin_url)
    base = admin_url.rsplit("/", 1)[0]
    run = uuid.uuid4().hex[:10]
    names = {purpose: f"erpsync_{purpose}_{run}" for purpose in purposes}
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        urls = {}
        for purpose, name in names.items():
            url = f"{base}/{name}"
            urls[purpose] = url.replace("postgresql+psycopg://", "postgresql+asyncpg://", 1) \
                if purpose == "prefect" else url
        yield urls
    except Exception as exc:
        if not created:
            raise ConfigError(f"could not create databases on {admin_url.split('@')[-1]}: {exc}") from exc
        raise
    finally:
        if not keep:
            with admin.connect() as conn:
                for name in created:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class LocalStack:
    def __init__(self, config: StackConfig, base_env: dict[str, str], *, progress=print):
        self.config = config
        self.env = config.environment(base_env)
        self.group = ProcessGroup(log_dir=config.home / "logs", env=self.env, cwd=config.project_dir)
        self.progress = progress
        self._tryton = ExitStack()  # the trytond's database copy, dropped after the processes stop
        if config.erp not in ERPS:
            raise ConfigError(f"erp: one of {', '.join(ERPS)}, got {config.erp!r}")

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        c, g = self.config, self.group
        private_folder(c.home)  # the ledger and the sandboxes' databases hold customer data
        self.progress(f"starting Prefect server on {c.prefect_ui} (state in {c.home / 'prefect'})")
        g.start("prefect-server", [venv_script("prefect"), "server", "start", "--host", "127.0.0.1",
                                   "--port", str(c.prefect_port)])
        if c.erp == "tryton":
            self.start_tryton()
        else:
            self.progress(f"starting ERP sandbox on {c.erp_url}")
            g.start("erp-sandbox", python_module("erpsync_dev.sandboxes.netsuite", *c.erp_sandbox_args()))
        if c.alerts_port:
            self.start_alert_sink(c.alerts_port)
        if c.erp == "netsuite":
            g.wait_http("ERP sandbox", f"{c.erp_url}/healthz")
        g.wait_http("Prefect server", f"{c.prefect_api}/health", timeout=180)
        self.progress("creating the work pool and deploying (prefect deploy --all)")
        self._run([venv_script("prefect"), "work-pool", "create", "erpsync", "--type", "process", "--overwrite"])
        self._run([venv_script("prefect"), "--no-prompt", "deploy", "--all"])
        # Applied while the workers and the receiver start (it takes seconds), and before any event: an automation
        # only sees events that arrive after it exists.
        applying = self._start_alerts_apply() if c.alerts_port else None
        if c.crash_detection:
            from orchestration.automations import ensure_crash_detection

            self.progress(f"crash detection: automation {ensure_crash_detection(c.prefect_api)}")
        names = c.worker_names
        kind = "erpsync worker" if c.forking_workers else "Prefect process worker"
        self.progress(f"starting {len(names)} {kind}(s) (up to {c.worker_limit} runs at once each)")
        for name in names:
            if c.forking_workers:
                g.start(name, python_module("erpsync", "worker", "--pool", "erpsync", "--limit", str(c.worker_limit),
                                            "--name", name))
            else:
                g.start(name, [venv_script("prefect"), "worker", "start", "--pool", "erpsync", "--type", "process",
                               "--limit", str(c.worker_limit), "--name", name])
        self.progress(f"starting the receiver on {c.receiver_url}")
        g.start("receiver", python_module("erpsync", "serve", "--port", str(c.receiver_port)))
        g.wait_http("receiver", f"{c.receiver_url}/healthz")
        self.progress(f"starting the shop sandbox on {c.shop_url}")
        g.start("shop-sandbox", python_module(
            "erpsync_dev.sandboxes.shopify", "serve", "--port", str(c.shop_port),
            "--target", f"{c.receiver_url}/webhooks/shopify", "--orders", str(c.orders), "--seed", str(c.seed),
            "--access-token", SHOP_ACCESS_TOKEN))
        g.wait_http("shop sandbox", f"{c.shop_url}/healthz")
        if applying is not None:
            self._finish(applying, "erpsync alerts apply")
            self.progress(f"alerts.yaml applied (erpsync alerts apply): notifications go to the local webhook sink "
                          f"{c.alerts_url}")

    def start_tryton(self) -> None:
        """A real trytond on ``erp_port`` serving a fresh copy of the seed database (built on first use, cached
        under .erpsync/tryton, or a template on ``tryton_postgres_url``); returns once a login succeeds."""
        c = self.config
        where = (f"PostgreSQL {c.tryton_postgres_url.split('@')[-1]} (template built on first use: minutes)"
                 if c.tryton_postgres_url else "SQLite (seed built on first use, about a minute; cached under "
                 ".erpsync/tryton)")
        self.progress(f"starting Tryton (trytond) on {c.erp_url}, database {c.tryton_database} on {where}")
        running = self._tryton.enter_context(tryton_server(
            c.home / "tryton", database=TRYTON_DATABASE, group=self.group, postgres_url=c.tryton_postgres_url,
            port=c.erp_port))
        if running.database != c.tryton_database:  # the workers' settings were written with this name
            raise ConfigError(f"trytond serves {running.database}, the workers expect {c.tryton_database}")

    def start_alert_sink(self, port: int) -> str:
        """Start the local webhook sink (recording to ``config.alerts_record``) and return its URL."""
        c = self.config
        self.group.start("alert-sink", python_module("erpsync_dev.webhook_sink", "--port", str(port),
                                                     "--record", str(c.alerts_record)))
        url = f"http://127.0.0.1:{port}"
        self.group.wait_http("alert sink", f"{url}/healthz")
        return f"{url}/alerts"

    def notifications(self) -> list[dict[str, str]]:
        """What the alert sink has received so far, oldest first."""
        return read_received(self.config.alerts_record)

    def _start_alerts_apply(self) -> subprocess.Popen:
        log = open(self.group.log_dir / "setup.log", "ab")  # noqa: SIM115 - closed by _finish
        # The URL comes from ERPSYNC_ALERT_WEBHOOK_URL in the environment, as in production.
        process = subprocess.Popen(python_module("erpsync", "alerts", "apply"), cwd=self.config.project_dir,
                                   env=self.env, stdout=log, stderr=subprocess.STDOUT)
        process.log = log  # type: ignore[attr-defined]
        return process

    def _finish(self, process: subprocess.Popen, what: str) -> None:
        try:
            code = process.wait(timeout=180)
        finally:
            process.log.close()  # type: ignore[attr-defined]
        if code != 0:
            log_path = self.group.log_dir / "setup.log"
            raise ConfigError(f"`{what}` failed ({code}); see {log_path}:\n{tail(log_path)}")

    def _run(self, argv: list[str]) -> None:
        log_path = self.group.log_dir / "setup.log"
        with open(log_path, "ab") as log:
            result = subprocess.run(argv, cwd=self.config.project_dir, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, timeout=180)
        if result.returncode != 0:
            raise ConfigError(f"`{' '.join(argv[-3:])}` failed ({result.returncode}); see {log_path}:\n"
                              f"{tail(log_path)}")

    def kill(self, name: str) -> int:
        """SIGKILL one part (e.g. "worker-1", "receiver") and everything it spawned, as a crash would."""
        return self.group.kill(name)

    def restart(self, name: str) -> None:
        """Start a killed part again; waits until the receiver or a sandbox answers again."""
        self.group.restart(name)
        c = self.config
        health = {"receiver": f"{c.receiver_url}/healthz", "erp-sandbox": f"{c.erp_url}/healthz",
                  "shop-sandbox": f"{c.shop_url}/healthz", "prefect-server": f"{c.prefect_api}/health"}
        if name in health:
            self.group.wait_http(name, health[name], timeout=180)

    def stop(self) -> None:
        try:
            self.group.stop()
        finally:
            self._tryton.close()
