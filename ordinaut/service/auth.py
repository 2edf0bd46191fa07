"""Agent identity: random bearer tokens, stored as SHA-256 hashes, and scopes.

Tokens are 32 random bytes (URL-safe base64) prefixed ``ord_``; with that much entropy a
plain SHA-256 is the right hash (no salt or slow KDF needed), and lookups stay one indexed
equality. Scopes gate operations; ``agents:admin`` sees every agent's tasks and runs.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from ordinaut.errors import AuthError, Forbidden
from ordinaut.store import queries
from ordinaut.vocabulary import ADMIN_SCOPE, OPERATION_SCOPES, holds

TOKEN_PREFIX = "ord_"

ADMIN_SCOPES = OPERATION_SCOPES


@dataclass(frozen=True)
class Principal:
    """The agent a request acts as."""

    agent_id: uuid.UUID
    name: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    def require(self, scope: str) -> None:
        """Raise Forbidden unless this agent holds ``scope`` (admins hold every scope)."""
        if not holds(self.scopes, scope):
            raise Forbidden(f"this token lacks the scope '{scope}'", field="scope")


def new_token() -> str:
    """A fresh random bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


MISSING = "missing bearer token: send 'Authorization: Bearer <token>'"
UNKNOWN = "unknown or revoked token"


def lookup(conn: Connection, token_hash: str) -> Principal | None:
    """The agent whose token hashes to ``token_hash``, or None (unknown or revoked)."""
    found = queries.agent_by_token(conn, token_hash)
    return None if found is None else Principal(found.id, found.name, frozenset(found.scopes))


def authenticate(conn: Connection, token: str | None) -> Principal:
    """The agent owning ``token``; AuthError when missing, unknown or revoked."""
    if not token:
        raise AuthError(MISSING)
    found = lookup(conn, hash_token(token))
    if found is None:
        raise AuthError(UNKNOWN)
    return found
