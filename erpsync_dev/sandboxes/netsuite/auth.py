"""The NetSuite sandbox's OAuth 2.0 token endpoint (client credentials, by secret or by JWT assertion) and the
tokens it issued, each valid for the token lifetime: a request with an expired one is answered 401."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from erpsync_dev.sandboxes.netsuite.options import SandboxOptions

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenIssuer:
    """The access tokens issued and when each expires (monotonic clock)."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        # A generator of its own: token requests do not shift the record calls' sequence of latencies.
        self.latency = options.latency.sampler()

    def authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expires = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expires is not None and time.monotonic() < expires

    async def token(self, request: Request) -> Response:
        if delay := self.latency():
            await asyncio.sleep(delay)
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if not (self._client_by_secret(request, form) or self._client_by_assertion(request, form)):
            return JSONResponse({"error": "invalid_client"}, 401, headers={"WWW-Authenticate": "Basic"})
        token = "sandbox-" + secrets.token_urlsafe(24)
        now = time.monotonic()
        self.tokens = {known: expiry for known, expiry in self.tokens.items() if expiry > now}
        self.tokens[token] = now + self.options.token_lifetime
        self.tokens_issued += 1
        lifetime = self.options.token_lifetime
        expires_in: float = int(lifetime) if float(lifetime).is_integer() else lifetime
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})

    def _client_by_secret(self, request: Request, form: dict[str, str]) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                return False
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return secrets.compare_digest(client_id, self.options.client_id) and secrets.compare_digest(
            secret, self.options.client_secret
        )

    def _client_by_assertion(self, request: Request, form: dict[str, str]) -> bool:
        # The sandbox holds no certificates: it checks the JWT's shape and claims, not its signature.
        if form.get("client_assertion_type") != JWT_BEARER_ASSERTION or "client_assertion" not in form:
            return False
        try:
            header_part, claims_part, signature = form["client_assertion"].split(".")
            header = json.loads(_b64url_decode(header_part))
            claims = json.loads(_b64url_decode(claims_part))
        except ValueError:
            return False
        now = time.time()
        return (
            header.get("alg") == "PS256"
            and bool(header.get("kid"))
            and bool(signature)
            and claims.get("iss") == self.options.client_id
            and str(claims.get("aud", "")).endswith(TOKEN_PATH)
            and isinstance(claims.get("iat"), int)
            and isinstance(claims.get("exp"), int)
            and 0 < claims["exp"] - claims["iat"] <= 3600
            and claims["exp"] > now
            and set(claims.get("scope") or []) <= {"restlets", "rest_webservices", "suite_analytics"}
        )

    def revoke(self) -> int:
        """Forget every issued token, as an administrator revoking them would; how many there were."""
        revoked = len(self.tokens)
        self.tokens.clear()
        return revoked


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
