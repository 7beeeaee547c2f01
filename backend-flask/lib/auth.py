"""Who is calling: Cognito access tokens, verified here with PyJWT.

RS256 signature against the user pool's JWKS, then `iss`, `exp`,
`token_use == "access"` and `client_id`. Keys are cached per process and
refetched when a token names an unknown `kid` (Cognito rotated its keys), at
most once per COGNITO_JWKS_REFETCH_SECONDS so forged kids cannot make us hammer
the JWKS endpoint.

A token that passed is remembered until its `exp` (the last VERIFIED_TOKENS of
them, per process): checking an RS256 signature costs more CPU than the rest of
a request, and the frontend sends the same token with every call for an hour.
Nothing is lost by it: a Cognito access token cannot be revoked before its
`exp` for an API that checks signatures, remembered or not
(docs/decisions/0012-remember-verified-tokens.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass

import jwt
from flask import Flask, current_app, request

from lib.errors import ApiError
from lib.validation import is_storable_text

log = logging.getLogger(__name__)

JWKS_TIMEOUT_SECONDS = 2
MAX_TOKEN_LENGTH = 8192
MAX_SUB_LENGTH = 256
VERIFIED_TOKENS = 4096


@dataclass(frozen=True)
class Caller:
    """Who signed the request: the `sub` of their verified access token. The statement that needs
    their users row finds it by cognito_user_id in the same round trip, and the service answers
    401 user_unknown when there is none."""

    cognito_user_id: str


class JwksCache:
    """The signing keys of one JWKS URL, by kid."""

    def __init__(self, url: str, refetch_seconds: float):
        self.url = url
        self.refetch_seconds = refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self.refetch_seconds:
                self._fetch()
            return self._keys.get(kid)

    def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310
                jwks = json.load(response)
            keys = jwt.PyJWKSet.from_dict(jwks).keys
        except (OSError, ValueError, jwt.PyJWKSetError) as err:
            log.error("could not fetch the Cognito JWKS from %s: %s", self.url, err)
            self._fetched_at = float("-inf")  # try again on the next request
            raise ApiError(503, "auth_unavailable", headers={"Retry-After": "1"}) from None
        self._keys = {key.key_id: key for key in keys if key.key_id}


class CognitoVerifier:
    def __init__(self, region: str, user_pool_id: str, client_id: str, jwks_url: str | None,
                 refetch_seconds: float):
        self.issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        self.client_id = client_id
        self.jwks = JwksCache(jwks_url or f"{self.issuer}/.well-known/jwks.json", refetch_seconds)
        self._verified: OrderedDict[str, dict] = OrderedDict()  # token -> claims, oldest first
        self._verified_lock = threading.Lock()

    def claims(self, token: str) -> dict:
        """The verified claims of an access token; 401 for anything else."""
        with self._verified_lock:
            claims = self._verified.get(token)
            if claims is not None:
                if claims["exp"] > time.time():
                    self._verified.move_to_end(token)
                    return claims
                del self._verified[token]
                raise ApiError(401, "token_expired")
        claims = self._verify(token)
        with self._verified_lock:
            self._verified[token] = claims
            if len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> dict:
        try:
            if len(token) > MAX_TOKEN_LENGTH:
                raise jwt.InvalidTokenError("too long")
            header = jwt.get_unverified_header(token)
            key = self.jwks.key(str(header.get("kid", "")))
            if key is None:
                raise jwt.InvalidTokenError("unknown kid")
            claims = jwt.decode(
                token, key=key, algorithms=["RS256"], issuer=self.issuer,
                options={"require": ["exp", "iss", "sub", "token_use", "client_id"],
                         "verify_aud": False},  # access tokens carry client_id, not aud
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "token_expired") from None
        except jwt.InvalidTokenError:
            raise ApiError(401, "token_invalid") from None
        if claims["token_use"] != "access" or claims["client_id"] != self.client_id:  # noqa: S105
            raise ApiError(401, "token_invalid")
        sub = claims["sub"]  # a string Postgres can compare (no NUL, no lone surrogate), or 401
        if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB_LENGTH or not is_storable_text(sub):
            raise ApiError(401, "token_invalid")
        return claims


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    pool_id, client_id = settings.aws_cognito_user_pool_id, settings.aws_cognito_user_pool_client_id
    if pool_id and client_id:
        app.extensions["cognito"] = CognitoVerifier(
            settings.aws_default_region, pool_id, client_id, settings.cognito_jwks_url,
            settings.cognito_jwks_refetch_seconds)
    else:
        log.warning("AWS_COGNITO_USER_POOL_ID or _CLIENT_ID unset: signed-in routes answer 401")


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "token_invalid")
    return token.strip()


def require_caller() -> Caller:
    """The signed-in caller; 401 when the token is missing or bad."""
    token = _bearer_token()
    if token is None:
        raise ApiError(401, "token_missing")
    verifier: CognitoVerifier | None = current_app.extensions.get("cognito")
    if verifier is None:
        raise ApiError(401, "token_invalid")
    return Caller(verifier.claims(token)["sub"])
