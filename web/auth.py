"""Credentials: agent passwords (argon2), agent session tokens, visitor tokens.

* Agent passwords are hashed with argon2id (``argon2-cffi``); hashing runs in a worker thread.
* Agent tokens are 256-bit random strings; only their SHA-256 is stored (``agent_sessions``), so
  they survive a restart and can be revoked on logout. The same token is the bearer token and the
  value of the ``curbe_session`` cookie.
* Visitor tokens are signed, not stored:
  ``vt2.<keyId>.<visitorId>.<tenantId>.<expiresAt>.<signature>``, HMAC-SHA256 with the key
  ``keyId`` of ``visitor_token_keys``. Checking one costs no database round trip, and it survives
  a restart because the keys do. A token expires (``CURBE_VISITOR_TOKEN_DAYS``, 30) and the
  heartbeat renews it while the visitor is active; the newest key not retired signs and every
  key not retired verifies, so keys rotate without logging anyone out (docs/security.md).
  ``vt1.<visitorId>.<tenantId>.<signature>`` (before keys had ids and tokens expired) verifies
  with key ``v1`` until that key is retired, and is renewed at the next heartbeat.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import secrets
from collections.abc import Awaitable, Callable, Sequence

import argon2
import attrs
import trio

from engine.clock import Clock

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
    kid: str | None = None  # the key that signed the token
    expires_at: int | None = None  # Unix seconds; None: a vt1 token (no expiry)


@attrs.frozen
class TokenKey:
    kid: str
    secret: bytes = attrs.field(repr=False)


# A token is renewed at a heartbeat once it is this old (or a quarter of its life, if shorter):
# an active visitor gets a new token about once a day, not one per heartbeat.
RENEW_AFTER = dt.timedelta(days=1)
# A token naming a key this process does not know makes it reload its keys (another process
# rotated them), at most this often (seconds): forged key ids cannot hammer the database.
RELOAD_GAP = 1.0


class VisitorTokens:
    """Issues and checks visitor tokens with a ring of keys (see the module's docstring)."""

    PREFIX = "vt2"
    LEGACY_PREFIX = "vt1"
    LEGACY_KID = "v1"

    def __init__(
        self,
        keys: Sequence[TokenKey],
        *,
        clock: Clock,
        lifetime: dt.timedelta,
        load: Callable[[], Awaitable[Sequence[TokenKey]]] | None = None,
    ) -> None:
        self._clock = clock
        self.lifetime = lifetime
        self.renew_after = min(RENEW_AFTER, lifetime / 4)
        self._load = load
        self._loaded_at = -math.inf
        self.reloads = 0
        self._use(keys)

    def _use(self, keys: Sequence[TokenKey]) -> None:
        if not keys:
            raise ValueError("no visitor-token key to sign with")
        self._keys = {k.kid: k.secret for k in keys}
        self._signing = keys[-1]  # the newest

    @property
    def signing_kid(self) -> str:
        return self._signing.kid

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    @staticmethod
    def _mac(secret: bytes, text: str) -> str:
        mac = hmac.new(secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def issue(self, visitor_id: str, tenant_id: str) -> str:
        expires = int(self._clock.now().timestamp() + self.lifetime.total_seconds())
        body = f"{self.PREFIX}.{self._signing.kid}.{visitor_id}.{tenant_id}.{expires}"
        return f"{body}.{self._mac(self._signing.secret, body)}"

    def check(self, token: str | None) -> VisitorIdentity | None:
        """Who ``token`` proves (None: not a token, a wrong signature, an unknown or retired
        key, expired)."""
        if not token or len(token) > 512:
            return None
        parts = token.split(".")
        if parts[0] == self.PREFIX and len(parts) == 6:
            _, kid, visitor_id, tenant_id, expires, signature = parts
            secret = self._keys.get(kid)
            if secret is None or not (expires.isascii() and expires.isdigit()):
                return None
            if not hmac.compare_digest(signature, self._mac(secret, token[: -len(signature) - 1])):
                return None
            if int(expires) <= self._clock.now().timestamp():
                return None
            return VisitorIdentity(visitor_id, tenant_id, kid, int(expires))
        if parts[0] == self.LEGACY_PREFIX and len(parts) == 4:
            _, visitor_id, tenant_id, signature = parts
            secret = self._keys.get(self.LEGACY_KID)
            mac = self._mac(secret, f"{visitor_id}|{tenant_id}") if secret else ""
            if not secret or not hmac.compare_digest(signature, mac):
                return None
            return VisitorIdentity(visitor_id, tenant_id, self.LEGACY_KID, None)
        return None

    def _names_unknown_key(self, token: str | None) -> bool:
        if not token or len(token) > 512:
            return False
        parts = token.split(".")
        return len(parts) == 6 and parts[0] == self.PREFIX and parts[1] not in self._keys

    async def identify(self, token: str | None) -> VisitorIdentity | None:
        """:meth:`check`, reloading the keys first when the token names a key this process does
        not know yet (rotated by another process), at most once every :data:`RELOAD_GAP`."""
        identity = self.check(token)
        if (
            identity is None
            and self._load is not None
            and self._names_unknown_key(token)
            and trio.current_time() - self._loaded_at >= RELOAD_GAP
        ):
            await self.reload()
            identity = self.check(token)
        return identity

    async def reload(self) -> None:
        assert self._load is not None
        self._loaded_at = trio.current_time()
        self._use(await self._load())
        self.reloads += 1

    def renew(self, token: str | None, identity: VisitorIdentity) -> str:
        """The token a heartbeat hands back: ``token`` itself while it is fresh and signed by
        the signing key, else a new one (renewed: a later expiry, the newest key)."""
        now = self._clock.now().timestamp()
        if (
            token is not None
            and identity.kid == self._signing.kid
            and identity.expires_at is not None
            and identity.expires_at - now > (self.lifetime - self.renew_after).total_seconds()
        ):
            return token
        return self.issue(identity.visitor_id, identity.tenant_id)

    async def run(
        self, interval: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Reload the keys every ``interval`` seconds (a service): a key retired elsewhere stops
        verifying here within that time, and a new one starts signing."""
        task_status.started()
        while True:
            await trio.sleep(interval)
            await self.reload()

    def describe(self) -> dict[str, object]:
        return {
            "signing_kid": self.signing_kid,
            "kids": sorted(self._keys),
            "reloads": self.reloads,
        }
