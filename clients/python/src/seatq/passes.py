"""Verify seatq passes offline, with PyJWT and the shared key (no call to Redis).

A pass is an HS256 JWT: header ``kid`` names the key of ``seatq.pass-keys`` (``kid:secret
kid2:secret2 ...``, the first one signs) that signed it; claims ``iss`` = ``seatq``, ``evt``
(event key), ``sub`` (user), ``tkt`` (ticket serial), ``iat`` and ``exp`` (seconds), and on a
sharded event's line shard ``grp`` (the event's group) and ``shd`` (the shard's index). Event keys
and users that are not UTF-8 travel base64url-encoded in ``evt_b64`` / ``sub_b64``.

Offline verification checks the signature, issuer and expiry (and the event and user when
given). It cannot see a revocation (QUEUE.REVOKE) or a session ended early: ask
``QUEUE.VERIFY`` (:meth:`seatq.Seatq.verify`) where that matters. Passes signed with an event's
own key (kid ``event``, when no ``seatq.pass-keys`` is configured) can only be checked by seatq.

Needs PyJWT (``pip install 'seatq[jwt]'``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Union

__all__ = ["PassClaims", "InvalidPass", "parse_pass_keys", "verify_pass", "ISSUER"]

ISSUER = "seatq"
#: The kid of passes signed with the event's own key: only seatq can check those.
EVENT_KID = "event"

Keys = Union[str, Mapping[str, Union[str, bytes]]]


class InvalidPass(Exception):
    """The pass does not verify. ``reason``: malformed | unknown_key | signature | expired |
    issuer | event | user (the PyJWT exception, if any, is the ``__cause__``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class PassClaims:
    """A verified pass's claims."""

    event: str
    user: str
    #: The ticket's serial (``tkt``), as the journal names tickets.
    serial: int
    issued_at: int
    #: Seconds since the epoch: the session's end when the pass was issued (sessions end on
    #: whole seconds, so this x 1000 is the ``expires_at_ms`` seatq answered with the pass).
    expires_at: int
    kid: str
    #: A pass issued by a line shard of a sharded event: the event's group (``grp``) and the
    #: shard's index (``shd``), which the inventory checks (``shd`` must be the shard the user
    #: belongs to, :func:`seatq.shard_of`); ``None`` for an ordinary event's pass.
    group: Optional[int] = None
    shard: Optional[int] = None


def parse_pass_keys(text: str) -> Dict[str, bytes]:
    """``kid:secret kid2:secret2`` (the value of ``seatq.pass-keys``) -> {kid: secret}."""
    keys: Dict[str, bytes] = {}
    for item in text.split():
        kid, sep, secret = item.partition(":")
        if not sep or not kid or not secret:
            raise ValueError(f"pass key {kid!r} is not kid:secret")
        keys[kid] = secret.encode()
    return keys


def _keys(keys: Keys) -> Dict[str, bytes]:
    if isinstance(keys, str):
        return parse_pass_keys(keys)
    return {k: (v.encode() if isinstance(v, str) else bytes(v)) for k, v in keys.items()}


def _claim(payload: Mapping[str, object], name: str) -> Optional[str]:
    plain = payload.get(name)
    if isinstance(plain, str):
        return plain
    encoded = payload.get(f"{name}_b64")
    if isinstance(encoded, str):
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return raw.decode("utf-8", "surrogateescape")
    return None


def verify_pass(
    token: Union[str, bytes],
    keys: Keys,
    *,
    event: Optional[str] = None,
    user: Optional[str] = None,
    leeway: float = 0,
    now: Optional[float] = None,
) -> PassClaims:
    """Checks a pass with PyJWT against ``keys`` (the ``seatq.pass-keys`` text, or a
    {kid: secret} mapping) and returns its claims; raises :class:`InvalidPass`.

    ``event`` / ``user``: also require these ``evt`` / ``sub`` claims. ``leeway``: seconds of
    clock skew accepted on ``exp``. ``now``: the time to check expiry against (tests).
    """
    import jwt  # PyJWT

    if isinstance(token, bytes):
        token = token.decode("ascii", "replace")
    table = _keys(keys)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.exceptions.DecodeError as e:
        raise InvalidPass("malformed", str(e)) from e
    kid = header.get("kid")
    if header.get("alg") != "HS256":
        raise InvalidPass("malformed", f"algorithm {header.get('alg')!r}, not HS256")
    if not isinstance(kid, str) or kid not in table:
        raise InvalidPass("unknown_key", f"kid {kid!r} is not among the keys given")
    options = {"require": ["exp", "iat", "iss", "tkt"], "verify_exp": now is None}
    try:
        payload = jwt.decode(
            token,
            table[kid],
            algorithms=["HS256"],
            issuer=ISSUER,
            leeway=leeway,
            options=options,
        )
    except jwt.exceptions.ExpiredSignatureError as e:
        raise InvalidPass("expired", str(e)) from e
    except jwt.exceptions.InvalidSignatureError as e:
        raise InvalidPass("signature", str(e)) from e
    except jwt.exceptions.InvalidIssuerError as e:
        raise InvalidPass("issuer", str(e)) from e
    except jwt.exceptions.InvalidTokenError as e:
        raise InvalidPass("malformed", str(e)) from e
    exp = int(payload["exp"])
    if now is not None and exp <= now - leeway:
        raise InvalidPass("expired", "Signature has expired")
    evt = _claim(payload, "evt")
    sub = _claim(payload, "sub")
    if evt is None or sub is None:
        raise InvalidPass("malformed", "the pass has no evt or sub claim")
    if event is not None and evt != event:
        raise InvalidPass("event", f"the pass is for event {evt!r}, not {event!r}")
    if user is not None and sub != user:
        raise InvalidPass("user", "the pass is another user's")
    return PassClaims(
        event=evt,
        user=sub,
        serial=int(payload["tkt"]),
        issued_at=int(payload["iat"]),
        expires_at=exp,
        kid=kid,
        group=_opt_int(payload.get("grp")),
        shard=_opt_int(payload.get("shd")),
    )


def _opt_int(value: object) -> Optional[int]:
    return value if isinstance(value, int) else None
