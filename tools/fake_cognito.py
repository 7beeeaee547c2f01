"""A fake Cognito user pool for the tests and bin/bench: a signing key, its JWKS served on
127.0.0.1, and access tokens signed with it as Cognito issues them. Needs PyJWT and cryptography
(the test stack)."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class FakeCognito:
    REGION = "us-east-1"
    POOL_ID = "us-east-1_TestPool"
    CLIENT_ID = "test-client-id"

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-kid-1"
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**public_jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
        self.fetches = 0  # how many times the JWKS was fetched
        cognito = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                cognito.fetches += 1
                body = json.dumps(cognito.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.REGION}.amazonaws.com/{self.POOL_ID}"

    def env(self) -> dict[str, str]:
        """The API's settings for this pool."""
        return {"AWS_DEFAULT_REGION": self.REGION, "AWS_COGNITO_USER_POOL_ID": self.POOL_ID,
                "AWS_COGNITO_USER_POOL_CLIENT_ID": self.CLIENT_ID, "COGNITO_JWKS_URL": self.jwks_url}

    def token(self, sub: str, *, key=None, kid: str | None = None, expires_in: int = 3600,
              **claims) -> str:
        """An access token as Cognito issues it; override any claim to forge a bad one."""
        now = int(time.time())
        payload = {"sub": sub, "iss": self.issuer, "client_id": self.CLIENT_ID, "token_use": "access",
                   "scope": "aws.cognito.signin.user.admin", "auth_time": now, "iat": now,
                   "exp": now + expires_in, "jti": os.urandom(8).hex(), "username": sub, **claims}
        return jwt.encode(payload, key or self.key, algorithm="RS256",
                          headers={"kid": kid or self.kid})

    def headers(self, sub: str, **kwargs) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, **kwargs)}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
