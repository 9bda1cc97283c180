"""Visitor tokens (web/auth.py ``VisitorTokens``), below the HTTP boundary: they expire, are
renewed while fresh is no longer fresh, carry the id of the key that signed them, and verify with
any key not retired (issue 16, finding 9). Real servers: tests/web/test_token_keys.py."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest
import trio
import trio.testing

from tests.support import ManualClock
from web.auth import TokenKey, VisitorIdentity, VisitorTokens

A = TokenKey("ka", b"a" * 32)
B = TokenKey("kb", b"b" * 32)
LEGACY = TokenKey("v1", b"l" * 32)
DAY = dt.timedelta(days=1)


def ring(*keys: TokenKey, clock: ManualClock | None = None, days: float = 30) -> VisitorTokens:
    return VisitorTokens(keys, clock=clock or ManualClock(), lifetime=dt.timedelta(days=days))


def vt1(visitor_id: str, tenant_id: str, secret: bytes) -> str:
    """A token as servers before key ids signed it."""
    mac = hmac.new(secret, f"{visitor_id}|{tenant_id}".encode(), hashlib.sha256).digest()
    return f"vt1.{visitor_id}.{tenant_id}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_a_token_names_its_key_and_expires() -> None:
    clock = ManualClock()
    tokens = ring(A, clock=clock)
    token = tokens.issue("vis_1", "ten_1")
    prefix, kid, visitor, tenant, expires, _ = token.split(".")
    assert (prefix, kid, visitor, tenant) == ("vt2", "ka", "vis_1", "ten_1")
    assert int(expires) == pytest.approx((clock.now() + 30 * DAY).timestamp(), abs=2)
    assert tokens.check(token) == VisitorIdentity("vis_1", "ten_1", "ka", int(expires))
    clock.advance(days=29, hours=23)
    assert tokens.check(token) is not None
    clock.advance(hours=2)
    assert tokens.check(token) is None  # expired


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t.replace("vis_1", "vis_2"),  # another visitor
        lambda t: t.replace("ten_1", "ten_2"),  # another tenant
        lambda t: ".".join([*t.split(".")[:4], str(int(t.split(".")[4]) + 86400), t.split(".")[5]]),
        lambda t: t.replace(".ka.", ".kb."),  # another key's id on this key's signature
        lambda t: t[:-2],
        lambda t: t + "x" * 600,
        lambda t: "vt3" + t[3:],
        lambda t: ".".join(t.split(".")[:5]),
    ],
)
def test_a_changed_token_proves_nothing(forge: object) -> None:
    tokens = ring(A, B)
    good = ring(A).issue("vis_1", "ten_1")  # signed by A while A signed
    assert tokens.check(good) is not None
    assert tokens.check(forge(good)) is None  # type: ignore[operator]


def test_the_newest_key_signs_and_every_key_not_retired_verifies() -> None:
    before = ring(A).issue("vis_1", "ten_1")
    rotated = ring(A, B)
    assert rotated.signing_kid == "kb"
    assert rotated.issue("vis_1", "ten_1").split(".")[1] == "kb"
    assert rotated.check(before) is not None  # nobody logged out by a rotation
    assert ring(B).check(before) is None  # A retired: its tokens refused


def test_a_token_from_before_key_ids_verifies_with_key_v1_until_it_is_retired() -> None:
    old = vt1("vis_1", "ten_1", LEGACY.secret)
    tokens = ring(LEGACY, A)
    assert tokens.check(old) == VisitorIdentity("vis_1", "ten_1", "v1", None)
    assert tokens.check(vt1("vis_1", "ten_1", b"x" * 32)) is None
    assert ring(A).check(old) is None
    renewed = tokens.renew(old, tokens.check(old))  # type: ignore[arg-type]
    assert renewed.startswith("vt2.ka.vis_1.ten_1.")


def test_a_heartbeat_renews_a_token_once_it_is_a_day_old_or_from_an_older_key() -> None:
    clock = ManualClock()
    tokens = ring(A, clock=clock)
    token = tokens.issue("vis_1", "ten_1")
    who = tokens.check(token)
    assert who is not None
    clock.advance(hours=23)
    assert tokens.renew(token, who) == token  # fresh: the same token, no churn
    clock.advance(hours=2)
    renewed = tokens.renew(token, who)
    assert renewed != token
    assert tokens.check(renewed).expires_at > who.expires_at  # type: ignore[union-attr]

    rotated = ring(A, B, clock=clock)
    fresh = ring(A, clock=clock).issue("vis_1", "ten_1")
    again = rotated.renew(fresh, rotated.check(fresh))  # type: ignore[arg-type]
    assert again.split(".")[1] == "kb"  # moved to the signing key at once


def test_a_short_life_renews_at_a_quarter_of_it() -> None:
    clock = ManualClock()
    tokens = ring(A, clock=clock, days=1)
    token = tokens.issue("vis_1", "ten_1")
    who = tokens.check(token)
    clock.advance(hours=5)
    assert tokens.renew(token, who) == token  # type: ignore[arg-type]
    clock.advance(hours=2)
    assert tokens.renew(token, who) != token  # type: ignore[arg-type]


async def test_a_token_of_a_key_unknown_here_reloads_the_keys_at_most_once_a_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stored = [A]
    loads = 0

    async def load() -> list[TokenKey]:
        nonlocal loads
        loads += 1
        return list(stored)

    here = VisitorTokens([A], clock=ManualClock(), lifetime=30 * DAY, load=load)
    elsewhere = ring(A, B)  # another process rotated: B signs there
    token = elsewhere.issue("vis_1", "ten_1")
    assert here.check(token) is None
    assert await here.identify(token) is None  # B not stored yet (as far as this load saw)
    assert loads == 1
    stored.append(B)
    assert await here.identify(token) is None  # within a second: no second load
    assert loads == 1
    await trio.sleep(1)
    who = await here.identify(token)
    assert who is not None and who.kid == "kb" and loads == 2
    assert here.signing_kid == "kb"  # and B signs here now too
    forged = token.replace(".kb.", ".kz.")
    await trio.sleep(1)
    assert await here.identify(forged) is None and loads == 3
    assert await here.identify(forged) is None and loads == 3  # forged ids cannot hammer


async def test_the_reload_service_drops_a_key_retired_elsewhere(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stored = [A, B]

    async def load() -> list[TokenKey]:
        return list(stored)

    tokens = VisitorTokens([A, B], clock=ManualClock(), lifetime=30 * DAY, load=load)
    old = ring(A).issue("vis_1", "ten_1")
    async with trio.open_nursery() as nursery:
        await nursery.start(tokens.run, 60)
        assert tokens.check(old) is not None
        stored.remove(A)
        await trio.sleep(61)
        assert tokens.check(old) is None
        assert tokens.describe() == {"signing_kid": "kb", "kids": ["kb"], "reloads": 1}
        nursery.cancel_scope.cancel()


def test_no_key_no_tokens() -> None:
    with pytest.raises(ValueError, match="no visitor-token key"):
        ring()
