"""Settings of the core, read from the environment with one predictable name each (ERPSYNC_*)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from erpsync.errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_BATCH_THRESHOLD = 20
# A batch run is one process, and Python runs one thread of it at a time: at most about one core per run. More
# share a burst through the inbox's take and the shared ERP slots, but on the 2-core machine measured two runs
# did no better than one (docs/BENCHMARKS.md, "Two batch runs per burst"): the default stays one, and a larger
# machine can raise it.
DEFAULT_BATCH_RUNS = 1


def private_folder(path: Path) -> Path:
    """``path``, created readable by this user only (0700) when missing: the state folder holds the ledger, whose
    inbox keeps raw customer payloads. Missing parents are created as usual. A folder that already exists keeps
    its mode, which its operator chose (a mount shared with a backup user, say)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return path
    os.chmod(path, 0o700)  # mkdir's mode passes through the umask; this is the mode meant, not less
    return path


class Settings(BaseModel):
    """The core's settings; webhook secrets are per source (erpsync/receiver/secrets.py), ERP ones in the connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(description="State folder: SQLite ledger, sandbox databases, Prefect home for the demo.")
    database_url: str = Field(description="SQLAlchemy URL of the ledger and inbox.")
    mappings_dir: Path = Field(description="Folder holding the mapping files and lookup tables.")
    max_body_bytes: int = Field(gt=0, description="Largest webhook body the receiver accepts (413 above).")
    prefect_api_url: str | None = Field(default=None, description="Prefect API the receiver dispatches runs to.")
    prefect_api_key: SecretStr | None = Field(default=None, description="Prefect Cloud API key, if any.")
    batch_threshold: int = Field(default=DEFAULT_BATCH_THRESHOLD, ge=0, description=(
        "Events waiting for dispatch above which the receiver starts a sync-batch run instead of one run per "
        "event (0 = never)."))
    batch_runs: int = Field(default=DEFAULT_BATCH_RUNS, ge=1, description=(
        "sync-batch runs started together for one backlog; they share it, each taking chunks from the inbox, "
        "while the ERP's shared limit keeps their calls together within its concurrency."))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("ERPSYNC_HOME") or Path.cwd() / ".erpsync").resolve()
        raw_cap = env.get("ERPSYNC_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES))
        try:
            cap = int(raw_cap)
        except ValueError:
            cap = 0
        if cap <= 0:
            raise ConfigError(f"ERPSYNC_MAX_BODY_BYTES: expected a positive number of bytes, got {raw_cap!r}")
        raw_threshold = env.get("ERPSYNC_BATCH_THRESHOLD", str(DEFAULT_BATCH_THRESHOLD))
        if not raw_threshold.strip().isdigit():
            raise ConfigError(f"ERPSYNC_BATCH_THRESHOLD: expected a whole number of events (0 = never batch), "
                              f"got {raw_threshold!r}")
        raw_runs = env.get("ERPSYNC_BATCH_RUNS", str(DEFAULT_BATCH_RUNS))
        if not raw_runs.strip().isdigit() or int(raw_runs) < 1:
            raise ConfigError(f"ERPSYNC_BATCH_RUNS: expected a whole number of sync-batch runs, at least 1, "
                              f"got {raw_runs!r}")
        return cls(
            batch_threshold=int(raw_threshold),
            batch_runs=int(raw_runs),
            home=home,
            database_url=env.get("ERPSYNC_DATABASE_URL") or f"sqlite:///{home / 'erpsync.db'}",
            mappings_dir=Path(env.get("ERPSYNC_MAPPINGS_DIR") or PROJECT_DIR / "mappings"),
            max_body_bytes=cap,
            prefect_api_url=env.get("PREFECT_API_URL") or None,
            prefect_api_key=SecretStr(env["PREFECT_API_KEY"]) if env.get("PREFECT_API_KEY") else None,
        )


DEMO_HOME = PROJECT_DIR / ".erpsync" / "demo"


def missing_ledger(settings: Settings, *, demo_home: Path = DEMO_HOME) -> str | None:
    """Why a command that only reads has nothing to read: the SQLite ledger file does not exist (connecting would
    create an empty one and report zeros). Names the demo's ledger when that one exists, as after `make demo`."""
    prefix = "sqlite:///"
    if not settings.database_url.startswith(prefix):
        return None  # a server database: connecting creates nothing, and an empty one is reported as empty
    path = Path(settings.database_url[len(prefix):])
    if path.exists():
        return None
    message = f"no ledger at {path} (ERPSYNC_HOME or ERPSYNC_DATABASE_URL choose it)"
    demo_ledger = demo_home / "erpsync.db"
    if demo_ledger.exists() and demo_ledger.resolve() != path.resolve():
        message += f"; the demo's ledger is {demo_ledger}: ERPSYNC_HOME={demo_home} erpsync …"
    return message


def settings_to_read(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for a command that only reads the ledger; ConfigError (``missing_ledger``'s message) when there is
    no ledger to read."""
    settings = Settings.from_env(environ)
    problem = missing_ledger(settings)
    if problem:
        raise ConfigError(problem)
    return settings
