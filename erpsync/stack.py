"""A whole local erpsync on loopback: Prefect server, worker, receiver, ERP sandbox and shop sandbox, each a
separate process. `erpsync demo`, the end-to-end tests and `make bench` all start it the same way."""

from __future__ import annotations

import base64
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from erpsync.errors import ConfigError
from erpsync.processes import ProcessGroup, python_module, tail, venv_script
from erpsync.settings import PROJECT_DIR

SANDBOX_CLIENT_ID = "sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
SHOP_ACCESS_TOKEN = "shpat_sandbox"


@dataclass
class StackConfig:
    home: Path
    prefect_port: int = 4200
    receiver_port: int = 8600
    erp_port: int = 8700
    shop_port: int = 8800
    database_url: str | None = None
    orders: int = 50
    seed: int = 7
    erp_latency_ms: int = 0
    erp_concurrency: int = 5
    worker_limit: int = 4
    erp_items: str = "1-999"  # item ids the ERP sandbox knows
    mappings_dir: Path | None = None  # default: the checkout's mappings/
    project_dir: Path = PROJECT_DIR
    # A fresh secret per stack: known to the shop sandbox and the receiver only, never printed.
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    woocommerce_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Standard Webhooks secrets are "whsec_" + base64 of the key bytes.
    standard_secret: str = field(default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())

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
    def shop_url(self) -> str:
        return f"http://127.0.0.1:{self.shop_port}"

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'erpsync.db'}"

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        prefect_home = self.home / "prefect"
        return {
            **base,
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{prefect_home / 'prefect.db'}",
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
            **({"ERPSYNC_MAPPINGS_DIR": str(self.mappings_dir)} if self.mappings_dir else {}),
            "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": self.webhook_secret,
            "ERPSYNC_WOOCOMMERCE_WEBHOOK_SECRET": self.woocommerce_secret,
            "ERPSYNC_STANDARD_WEBHOOK_SECRET": self.standard_secret,
            "ERPSYNC_SHOPIFY_SHOP_URL": self.shop_url,
            "ERPSYNC_SHOPIFY_ACCESS_TOKEN": SHOP_ACCESS_TOKEN,
            "ERPSYNC_NETSUITE_BASE_URL": self.erp_url,
            "ERPSYNC_NETSUITE_ACCOUNT_ID": "SANDBOX",
            "ERPSYNC_NETSUITE_CLIENT_ID": SANDBOX_CLIENT_ID,
            "ERPSYNC_NETSUITE_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
        }


class LocalStack:
    def __init__(self, config: StackConfig, base_env: dict[str, str], *, progress=print):
        self.config = config
        self.env = config.environment(base_env)
        self.group = ProcessGroup(log_dir=config.home / "logs", env=self.env, cwd=config.project_dir)
        self.progress = progress

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
        c.home.mkdir(parents=True, exist_ok=True)
        self.progress(f"starting Prefect server on {c.prefect_ui} (state in {c.home / 'prefect'})")
        g.start("prefect-server", [venv_script("prefect"), "server", "start", "--host", "127.0.0.1",
                                   "--port", str(c.prefect_port)])
        self.progress(f"starting ERP sandbox on {c.erp_url}")
        g.start("erp-sandbox", python_module(
            "erpsync.sandboxes.erp", "--port", str(c.erp_port), "--db", str(c.home / "erp-sandbox.db"),
            "--latency-ms", str(c.erp_latency_ms), "--concurrency", str(c.erp_concurrency),
            "--client-id", SANDBOX_CLIENT_ID, "--client-secret", SANDBOX_CLIENT_SECRET, "--items", c.erp_items))
        g.wait_http("ERP sandbox", f"{c.erp_url}/healthz")
        g.wait_http("Prefect server", f"{c.prefect_api}/health", timeout=180)
        self.progress("creating the work pool and deploying (prefect deploy --all)")
        self._run([venv_script("prefect"), "work-pool", "create", "erpsync", "--type", "process", "--overwrite"])
        self._run([venv_script("prefect"), "--no-prompt", "deploy", "--all"])
        self.progress(f"starting a process worker (up to {c.worker_limit} runs at once)")
        g.start("worker", [venv_script("prefect"), "worker", "start", "--pool", "erpsync", "--type", "process",
                           "--limit", str(c.worker_limit)])
        self.progress(f"starting the receiver on {c.receiver_url}")
        g.start("receiver", python_module("erpsync", "serve", "--port", str(c.receiver_port)))
        g.wait_http("receiver", f"{c.receiver_url}/healthz")
        self.progress(f"starting the shop sandbox on {c.shop_url}")
        g.start("shop-sandbox", python_module(
            "erpsync.sandboxes.shop", "serve", "--port", str(c.shop_port),
            "--target", f"{c.receiver_url}/webhooks/shopify", "--orders", str(c.orders), "--seed", str(c.seed),
            "--access-token", SHOP_ACCESS_TOKEN))
        g.wait_http("shop sandbox", f"{c.shop_url}/healthz")

    def _run(self, argv: list[str]) -> None:
        log_path = self.group.log_dir / "setup.log"
        with open(log_path, "ab") as log:
            result = subprocess.run(argv, cwd=self.config.project_dir, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, timeout=180)
        if result.returncode != 0:
            raise ConfigError(f"`{' '.join(argv[-3:])}` failed ({result.returncode}); see {log_path}:\n"
                              f"{tail(log_path)}")

    def stop(self) -> None:
        self.group.stop()
