"""Credentials: agent passwords (argon2), agent session tokens, visitor tokens.

* Agent passwords are hashed with argon2id (``argon2-cffi``); hashing runs in a worker thread.
* Agent tokens are 256-bit random strings; only their SHA-256 is stored (``agent_sessions``), so
  they survive a restart and can be revoked on logout. The same token is the bearer token and the
  value of the ``curbe_session`` cookie.
* Visitor tokens are signed, not stored: ``vt1.<visitorId>.<tenantId>.<signature>`` with an
  HMAC-SHA256 key kept in ``server_secrets``. Checking one costs no database round trip, and it
  survives a restart because the key does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import argon2
import attrs
import trio

_HASHER = argon2.PasswordHasher()
SESSION_COOKIE = "curbe_session"


async def hash_password(password: str) -> str:
    """Hash a password with argon2id in a worker thread (Trio flavour)."""
    return await trio.to_thread.run_sync(_HASHER.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """Check a password against its argon2 hash in a worker thread (Trio flavour)."""

    def check() -> bool:
        try:
            return _HASHER.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    return await trio.to_thread.run_sync(check)


# A hash to verify against when the email is unknown, so timing does not reveal which emails exist.
DUMMY_HASH = _HASHER.hash("curbe-chat-no-such-agent")


def new_agent_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_id(prefix: str) -> str:
    """An opaque id such as ``vis_3f9c0a51d2e84b7c``; never a number, never phone-like."""
    return f"{prefix}_{secrets.token_hex(8)}"


@attrs.frozen
class VisitorIdentity:
    visitor_id: str
    tenant_id: str


class VisitorSigner:
    """Issues and checks visitor tokens."""

    PREFIX = "vt1"

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, visitor_id: str, tenant_id: str) -> str:
        mac = hmac.new(self._key, f"{visitor_id}|{tenant_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def issue(self, visitor_id: str, tenant_id: str) -> str:
        return f"{self.PREFIX}.{visitor_id}.{tenant_id}.{self._sign(visitor_id, tenant_id)}"

    def check(self, token: str | None) -> VisitorIdentity | None:
        if not token or len(token) > 512:
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != self.PREFIX:
            return None
        _, visitor_id, tenant_id, signature = parts
        if not hmac.compare_digest(signature, self._sign(visitor_id, tenant_id)):
            return None
        return VisitorIdentity(visitor_id, tenant_id)
