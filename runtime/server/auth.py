"""Who is calling: bearer API keys and JWTs to a ``Principal`` with scopes.

API keys are stored as SHA-256 hashes (``server.api_keys``); a presented key is hashed and
compared with every stored hash by ``hmac.compare_digest`` (constant time, and every key is
compared, so the time says nothing about which one matched). A bearer token that looks like
a JWT (three base64url parts) is verified with pyjwt when ``server.jwt`` is set: HS256 with
the shared secret or RS256 with the issuer's public key, ``exp`` required, ``iss`` and
``aud`` checked when configured, ``sub`` required; scopes come from the ``scope`` claim (a
space-separated string, or a list). ``admin`` grants every scope.

Failures are ``AuthFailure`` with a reason safe to log; neither a key nor a token ever
appears in a message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from ..config import ServerConfig

__all__ = ["AuthFailure", "Authenticator", "Principal"]

_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
KNOWN_SCOPES = frozenset({"sessions:read", "sessions:write", "approvals:write", "admin"})


@attrs.frozen
class Principal:
    """An authenticated caller: ``id`` owns sessions (``key:<name>`` or ``jwt:<sub>``)."""

    kind: str               # "key" | "jwt"
    name: str               # the key's name or the token's subject
    scopes: frozenset[str]

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def allows(self, scope: str) -> bool:
        return scope == "any" or self.admin or scope in self.scopes


class AuthFailure(Exception):
    """No valid credential; ``reason`` is safe to log and to answer (no secret in it)."""

    def __init__(self, reason: str, *, error: str = "invalid_token") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error          # RFC 6750: invalid_request | invalid_token


@attrs.define
class _Key:
    name: str
    digest: bytes
    scopes: frozenset[str]


class Authenticator:
    """Checks ``Authorization`` headers against the configured keys and JWT settings."""

    def __init__(self, cfg: ServerConfig) -> None:
        self.keys = [_Key(k.name, bytes.fromhex(k.sha256), frozenset(k.scopes))
                     for k in cfg.api_keys]
        self.jwt = cfg.jwt
        self._jwt_key: Any = None
        if cfg.jwt is not None:
            if cfg.jwt.hs256_secret is not None:
                self._jwt_key, self._alg = cfg.jwt.hs256_secret, "HS256"
            else:
                assert cfg.jwt.rs256_public_key_file is not None
                self._jwt_key = Path(cfg.jwt.rs256_public_key_file).read_bytes()
                self._alg = "RS256"

    @property
    def configured(self) -> bool:
        return bool(self.keys) or self.jwt is not None

    def authenticate(self, header: str | None) -> Principal:
        """The caller of a request with this ``Authorization`` header."""
        if header is None or not header.strip():
            raise AuthFailure("no credential", error="invalid_request")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthFailure("the Authorization header is not 'Bearer <key or token>'",
                              error="invalid_request")
        if self.jwt is not None and _JWT.match(token):
            return self._verify_jwt(token)
        return self._verify_key(token)

    def _verify_key(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: _Key | None = None
        for key in self.keys:  # every key, whatever matched: constant time
            if hmac.compare_digest(digest, key.digest):
                found = key
        if found is None:
            raise AuthFailure("unknown API key")
        return Principal("key", found.name, found.scopes)

    def _verify_jwt(self, token: str) -> Principal:
        import jwt

        cfg = self.jwt
        assert cfg is not None
        required = ["exp", "sub"] + (["iss"] if cfg.issuer else []) + (
            ["aud"] if cfg.audience else [])
        try:
            claims = jwt.decode(token, self._jwt_key, algorithms=[self._alg],
                                issuer=cfg.issuer, audience=cfg.audience, leeway=cfg.leeway,
                                options={"require": required,
                                         "verify_aud": cfg.audience is not None})
        except jwt.ExpiredSignatureError:
            raise AuthFailure("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise AuthFailure("the token's issuer is not accepted") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure("the token's audience is not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthFailure(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthFailure("the token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise AuthFailure(f"invalid token ({type(exc).__name__})") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise AuthFailure("the token's sub claim is empty")
        return Principal("jwt", sub, frozenset(_scopes(claims.get("scope"))) & KNOWN_SCOPES)


def _scopes(claim: Any) -> Iterable[str]:
    if isinstance(claim, str):
        return claim.split()
    if isinstance(claim, list):
        return [s for s in claim if isinstance(s, str)]
    return []
