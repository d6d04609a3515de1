"""Bearer tokens: where they come from, how a request is checked, and where the service may listen without them.

Tokens come from ``MMM_API_TOKENS`` (comma-separated) and/or a secret file (one token a line, ``#`` comments;
``MMM_API_TOKEN_FILE`` or ``--token-file``), so that they never sit in a config file or on a command line.
With tokens set, every endpoint but health needs ``Authorization: Bearer <token>``. Without any, the service
answers unauthenticated, and so it refuses to listen anywhere but loopback. A token is compared in constant
time and never logged, echoed or put in an error message.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

from fastapi import HTTPException, Request, status

TOKENS_ENV = "MMM_API_TOKENS"
TOKEN_FILE_ENV = "MMM_API_TOKEN_FILE"
MIN_TOKEN_LENGTH = 16


class UnsafeBindError(RuntimeError):
    """The service was asked to listen beyond loopback without any token to protect it."""


def load_tokens(environ: Mapping[str, str] = os.environ, token_file: str | Path | None = None) -> frozenset[str]:
    """The accepted tokens: ``MMM_API_TOKENS`` plus the lines of the secret file (``token_file`` or
    ``MMM_API_TOKEN_FILE``). A token shorter than ``MIN_TOKEN_LENGTH`` is refused (without showing it)."""
    tokens = [t.strip() for t in environ.get(TOKENS_ENV, "").split(",")]
    path = token_file or environ.get(TOKEN_FILE_ENV)
    if path:
        lines = Path(path).read_text().splitlines()
        tokens += [line.strip() for line in lines if not line.strip().startswith("#")]
    tokens = [t for t in tokens if t]
    short = sum(len(t) < MIN_TOKEN_LENGTH for t in tokens)
    if short:
        raise ValueError(f"{short} API token(s) shorter than {MIN_TOKEN_LENGTH} characters: use long random tokens")
    return frozenset(tokens)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # another host name: it may resolve anywhere
        return False


def check_bind(host: str, tokens: frozenset[str]) -> None:
    """Refuse a non-loopback ``host`` when no token is set: an open service must stay on this machine."""
    if not tokens and not is_loopback(host):
        raise UnsafeBindError(
            f"refusing to listen on {host} without an API token: set {TOKENS_ENV} or {TOKEN_FILE_ENV} "
            "(or listen on 127.0.0.1)"
        )


class BearerAuth:
    """A FastAPI dependency: the request must carry one of ``tokens`` as a bearer token (none needed if empty)."""

    def __init__(self, tokens: frozenset[str]) -> None:
        self._tokens = tuple(t.encode() for t in tokens)

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    async def __call__(self, request: Request) -> None:
        """On the event loop (no I/O, a few microseconds): no worker thread per request just to check a token."""
        if not self._tokens:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        given_bytes = given.strip().encode()
        # compare with every token (no early exit), in constant time per token
        matched = [hmac.compare_digest(given_bytes, token) for token in self._tokens]
        if scheme.lower() != "bearer" or not any(matched):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
