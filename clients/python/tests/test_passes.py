"""Passes issued by seatq (with seatq.pass-keys configured) verify with PyJWT and the shared key;
tampered, expired and wrong-key passes do not."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from seatq import Admission, Seatq
from seatq.passes import InvalidPass, parse_pass_keys, verify_pass

from helpers import wait_state


def _admission(sq: Seatq, event: str, user: str) -> Admission:
    t = sq.enqueue(event, user).ticket
    wait_state(sq, event, t, "admitted")
    return sq.admit(event, t)


def _admitted_pass(sq: Seatq, event: str, user: str) -> str:
    return _admission(sq, event, user).pass_


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_pass_verifies_with_pyjwt(sq: Seatq, event: str, pass_keys: str) -> None:
    admission = _admission(sq, event, "ana")
    token = admission.pass_
    keys = parse_pass_keys(pass_keys)
    signing_kid = pass_keys.split()[0].split(":")[0]

    # Plain PyJWT, as any other service would.
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "kid": signing_kid, "typ": "JWT"}
    claims = jwt.decode(token, keys[signing_kid], algorithms=["HS256"], issuer="seatq")
    assert claims["evt"] == event and claims["sub"] == "ana" and claims["tkt"] == 0
    assert claims["iat"] <= time.time() < claims["exp"]
    # Sessions end on whole seconds: the JWT's exp is exactly the session's end.
    assert claims["exp"] * 1000 == admission.expires_at_ms
    assert sq.verify(event, token).expires_at_ms == admission.expires_at_ms

    # The helper: same checks, plus event and user.
    checked = verify_pass(token, pass_keys, event=event, user="ana")
    assert (checked.event, checked.user, checked.serial, checked.kid) == (event, "ana", 0, signing_kid)
    assert verify_pass(token, keys).expires_at == claims["exp"]
    assert sq.verify(event, token).valid


def test_tampered_wrong_key_and_other_event(sq: Seatq, event: str, pass_keys: str) -> None:
    token = _admitted_pass(sq, event, "ben")
    header, payload, signature = token.split(".")
    kid = pass_keys.split()[0].split(":")[0]

    claims = json.loads(_unb64(payload))
    claims["sub"] = "mallory"
    forged = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    with pytest.raises(InvalidPass) as e:
        verify_pass(forged, pass_keys)
    assert e.value.reason == "signature"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, parse_pass_keys(pass_keys)[kid], algorithms=["HS256"])
    assert sq.verify(event, forged).state == "invalid"

    bad_sig = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(InvalidPass) as e:
        verify_pass(bad_sig, pass_keys)
    assert e.value.reason == "signature"

    with pytest.raises(InvalidPass) as e:  # same kid, another secret
        verify_pass(token, {kid: b"x" * 40})
    assert e.value.reason == "signature"
    with pytest.raises(InvalidPass) as e:  # a kid we do not have
        verify_pass(token, "other:" + "y" * 40)
    assert e.value.reason == "unknown_key"

    with pytest.raises(InvalidPass) as e:
        verify_pass(token, pass_keys, event=f"{event}:other")
    assert e.value.reason == "event"
    with pytest.raises(InvalidPass) as e:
        verify_pass(token, pass_keys, user="someone")
    assert e.value.reason == "user"
    with pytest.raises(InvalidPass) as e:
        verify_pass("not.a.jwt", pass_keys)
    assert e.value.reason == "malformed"

    # A token signed with the right key but not by seatq (no iss) is refused too.
    own = jwt.encode({"sub": "ben", "exp": int(time.time()) + 60}, parse_pass_keys(pass_keys)[kid], headers={"kid": kid})
    with pytest.raises(InvalidPass):
        verify_pass(own, pass_keys)


def test_expired_pass(sq: Seatq, event: str, pass_keys: str) -> None:
    # PASS-TTL 2 s: the session ends 2 s after the call, rounded up to a whole second, and
    # exp is that end, so the pass is still good when read and expires within 3 s.
    sq.config_set(event, pass_ttl=2000)
    admission = _admission(sq, event, "cat")
    token = admission.pass_
    exp = verify_pass(token, pass_keys).expires_at
    assert exp * 1000 == admission.expires_at_ms
    with pytest.raises(InvalidPass) as e:
        verify_pass(token, pass_keys, now=exp)
    assert e.value.reason == "expired"
    # For real: wait for the clock to reach exp (at most 2 s).
    while time.time() < exp:
        time.sleep(0.1)
    with pytest.raises(InvalidPass) as e:
        verify_pass(token, pass_keys)
    assert e.value.reason == "expired"
    with pytest.raises(jwt.ExpiredSignatureError):
        kid = jwt.get_unverified_header(token)["kid"]
        jwt.decode(token, parse_pass_keys(pass_keys)[kid], algorithms=["HS256"])
    assert verify_pass(token, pass_keys, leeway=60).user == "cat"
    assert sq.verify(event, token).state == "expired"


def test_rotation_second_key_still_verifies(pass_keys: str) -> None:
    """Keys listed after the first (rotated out of signing) still verify their passes."""
    keys = parse_pass_keys(pass_keys)
    assert len(keys) >= 2, "the suite configures two keys"
    old_kid = list(keys)[1]
    token = jwt.encode(
        {"iss": "seatq", "evt": "e", "sub": "u", "tkt": 3, "iat": int(time.time()), "exp": int(time.time()) + 60},
        keys[old_kid],
        algorithm="HS256",
        headers={"kid": old_kid},
    )
    assert verify_pass(token, pass_keys).serial == 3
