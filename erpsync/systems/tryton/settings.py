"""Where the Tryton server is, which database, and the user erpsync logs in as (``ERPSYNC_TRYTON_*``)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from erpsync.errors import ConfigError

ENV_NAMES = {
    "url": "ERPSYNC_TRYTON_URL",
    "database": "ERPSYNC_TRYTON_DATABASE",
    "login": "ERPSYNC_TRYTON_LOGIN",
    "password": "ERPSYNC_TRYTON_PASSWORD",
    "timeout_seconds": "ERPSYNC_TRYTON_TIMEOUT_SECONDS",
    "concurrency_limit": "ERPSYNC_TRYTON_CONCURRENCY_LIMIT",
    "change_settle_seconds": "ERPSYNC_TRYTON_CHANGE_SETTLE_SECONDS",
}


class TrytonSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="The server's root, e.g. http://127.0.0.1:8000/ (trytond's [web] listen).")
    database: str = Field(min_length=1, description="The database name, as in /<database>/rpc/.")
    login: str = Field(min_length=1, description="The Tryton user erpsync logs in as (its company is used).")
    password: SecretStr = Field(description="That user's password.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of every HTTP call, in seconds.")
    concurrency_limit: int = Field(
        default=4, ge=0,
        description="Calls in flight to this server, all workers together (0: no limit). trytond's built-in "
                    "server is one process: more calls in flight only queue there.")
    change_settle_seconds: float = Field(
        default=10.0, ge=0,
        description="Changes younger than this are left for the next changes_since call: create_date and "
                    "write_date are the writing transaction's start time, so a long transaction commits rows "
                    "dated before changes already read.")

    @field_validator("url")
    @classmethod
    def _http_root(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8000/")
        return value.rstrip("/") + "/"

    @field_validator("database")
    @classmethod
    def _database_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("letters, digits, _ . - only")
        return value

    @property
    def rpc_url(self) -> str:
        return f"{self.url}{self.database}/rpc/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TrytonSettings:
        """Read the ``ERPSYNC_TRYTON_*`` variables; a ``ConfigError`` names the variable that is wrong."""
        values: dict[str, Any] = {}
        for name, env_name in ENV_NAMES.items():
            raw = environ.get(env_name, "").strip()
            if raw:
                values[name] = raw
        for required in ("url", "database", "login", "password"):
            if required not in values:
                raise ConfigError(f"{ENV_NAMES[required]} is not set")
        try:
            return cls(**values)
        except ValidationError as error:
            problem = error.errors()[0]
            field = str(problem["loc"][0]) if problem["loc"] else ""
            message = problem["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{ENV_NAMES.get(field, field)}: {message}") from None
