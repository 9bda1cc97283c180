"""Sign-in that cannot be raced, nor used to exhaust the server's memory (issue #16).

* Every attempt is counted **before** its password is checked, in PostgreSQL, so that parallel
  attempts cannot all slip under a limit and every process of a cluster shares one count
  (:func:`storage.queries.begin_login_attempt`). Limits, in a sliding window (15 minutes): the
  account from one address (5), the account from anywhere (20), the address (30). Past one, the
  answer is 429 with ``Retry-After``, even for the right password. A sign-in that succeeds clears
  the failures of its account from its address.
* Password checks (argon2id: 64 MiB and tens of milliseconds each, in a thread) run at most
  ``password_checks`` at once (2); the others wait up to ``password_check_wait_seconds`` (5 s)
  and then get 503 ``busy`` with ``Retry-After`` (that attempt is not counted).
* An unknown email is checked against a dummy hash: the same cost and the same 401.
* The address is the socket's, or the ``X-Forwarded-For`` hop that the configured trusted
  proxies vouch for (:func:`web.deps.client_ip`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import trio

from storage import queries
from web import auth
from web.services import Services, Settings
from web.throttles import too_many
from web.wire import ApiError


@attrs.frozen
class LoginLimits:
    per_account_address: int
    per_account: int
    per_address: int
    window: dt.timedelta

    @classmethod
    def of(cls, settings: Settings) -> LoginLimits:
        return cls(
            per_account_address=settings.login_max_failures,
            per_account=settings.login_max_per_account,
            per_address=settings.login_max_per_address,
            window=dt.timedelta(seconds=settings.login_window_seconds),
        )

    def keys(self, email: str, address: str | None) -> list[tuple[str, int]]:
        """Each ``(key, limit)`` an attempt counts against."""
        return [
            (f"account:{email.strip().lower()}", self.per_account),
            (self.own_key(email, address), self.per_account_address),
            (f"address:{address or '-'}", self.per_address),
        ]

    def own_key(self, email: str, address: str | None) -> str:
        """The key a success clears: this account from this address."""
        return f"account-address:{email.strip().lower()}|{address or '-'}"


async def sign_in(s: Services, email: str, password: str, address: str | None) -> dict[str, Any]:
    """The agent row of ``email`` when ``password`` is its password; else :class:`ApiError`
    401 ``invalid_credentials``, 429 ``too_many_attempts`` or 503 ``busy``."""
    limits = LoginLimits.of(s.settings)
    attempt = auth.new_id("try")
    now = s.clock.now()
    free_at, row = await s.db.run(
        queries.begin_sign_in, attempt, limits.keys(email, address), now, limits.window, email
    )
    if free_at is not None:
        raise too_many("failed sign-ins", (free_at - now).total_seconds(), "too_many_attempts")
    stored = row["password_hash"] if row else auth.DUMMY_HASH
    acquired = False
    with trio.move_on_after(s.settings.password_check_wait_seconds):
        await s.password_checks.acquire()
        acquired = True
    if not acquired:
        await s.db.run(queries.forget_login_attempt, attempt)
        raise ApiError(503, "busy", "too many sign-ins at once; retry", retryAfterSeconds=2)
    try:
        ok = await auth.verify_password(stored, password)
    finally:
        s.password_checks.release()
    if row is None or not ok:
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    await s.db.run(queries.clear_login_failures, attempt, limits.own_key(email, address))
    return row
