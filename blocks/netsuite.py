"""Prefect block holding a NetSuite account's connection settings and credentials."""

from __future__ import annotations

import os

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from erpsync.erp_slots import ErpSlots
from erpsync.errors import ConfigError
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings


class NetSuiteConnection(Block):
    """Where the NetSuite REST API is and how to get a token (OAuth 2.0 client credentials)."""

    _block_type_name = "erpsync NetSuite connection"
    _block_type_slug = "erpsync-netsuite-connection"
    _description = "Base URL and OAuth 2.0 client credentials of a NetSuite account (or the ERP sandbox)."

    base_url: str = Field(description="e.g. https://1234567.suitetalk.api.netsuite.com, or the sandbox's URL.")
    account_id: str | None = Field(default=None, description="NetSuite account id (realm), e.g. 1234567 or 1234567_SB1.")
    client_id: str = Field(description="Client id of the integration record.")
    client_secret: SecretStr | None = Field(default=None, description="Client secret (sandbox, plain client credentials).")
    certificate_id: str | None = Field(default=None, description="Certificate id of the M2M mapping (real NetSuite).")
    private_key: SecretStr | None = Field(default=None, description="PEM private key matching the certificate.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of every HTTP call, in seconds.")
    concurrency_limit: int = Field(
        default=5, ge=0,
        description="Requests in flight to the account, all workers together: NetSuite's concurrency limit for "
                    "the account (0: no limit). Shared through the ledger database.",
    )

    def settings(self) -> NetSuiteSettings:
        """The core's settings object; validation (e.g. a secret or a certificate is required) happens there."""
        return NetSuiteSettings(**self.model_dump(include=set(NetSuiteSettings.model_fields), exclude_none=True))

    def get_client(self, slots: ErpSlots | None = None) -> NetSuiteClient:
        """A client; pass ``slots`` (``ErpSlots.for_database``) to share the limit with other processes."""
        return NetSuiteClient(self.settings(), slots=slots)


BLOCK_ENV = "ERPSYNC_NETSUITE_BLOCK"
BLOCK_DEFAULT = "netsuite"


def configured_in_env(environ=os.environ) -> bool:
    """The workers read ERPSYNC_NETSUITE_* when the account (or base URL) is set there."""
    return bool(environ.get("ERPSYNC_NETSUITE_BASE_URL") or environ.get("ERPSYNC_NETSUITE_ACCOUNT_ID"))


def writer_from_block(database_url: str, environ=os.environ) -> NetSuiteClient:
    """The client of the block ERPSYNC_NETSUITE_BLOCK names (default ``netsuite``), under the shared slots."""
    name = environ.get(BLOCK_ENV, BLOCK_DEFAULT)
    try:
        block = NetSuiteConnection.load(name, _sync=True)
    except ValueError:  # Prefect's answer for a block that does not exist
        raise ConfigError(f"no NetSuite connection: set ERPSYNC_NETSUITE_ACCOUNT_ID (or _BASE_URL) and its "
                          f"credentials for the workers, or create the block '{name}' "
                          f"(erpsync-netsuite-connection)") from None
    settings = block.settings()
    return block.get_client(ErpSlots.for_database(database_url, settings.concurrency_limit,
                                                  name=settings.base_url, linger=settings.timeout_seconds))
