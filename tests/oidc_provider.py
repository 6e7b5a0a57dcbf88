"""A small, real OpenID Connect provider on 127.0.0.1, for the login tests.

It speaks the authorization-code flow of OpenID Connect Core 1.0 over real HTTP, the way a
school's identity provider does, so Streamlit's ``st.login`` (Authlib underneath) runs end to
end against it with nothing mocked:

- ``GET /.well-known/openid-configuration``: the discovery document (OpenID Connect
  Discovery 1.0, section 3);
- ``GET /jwks``: the public RSA key (RFC 7517);
- ``GET /authorize``: checks ``client_id``, ``redirect_uri`` and ``response_type=code``, then
  shows a sign-in form (an e-mail address and a display name), as a real provider shows its
  login page; ``POST /authorize`` issues a single-use code and redirects to ``redirect_uri``
  with it and the client's ``state``;
- ``POST /token``: exchanges the code (client authenticated by HTTP Basic, or by
  ``client_secret_post``) for an access token and an ID token: a JWT signed RS256
  (RFC 7515/7519) with ``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``nonce``, ``email``,
  ``email_verified`` and ``name``.

The token is signed here with :mod:`cryptography` directly (not with Authlib, which verifies
it on the app's side), so the provider is an independent party. ``sub`` is derived from the
e-mail address (stable per person). Every issued ID token's claims are kept in
:attr:`LocalOpenIDProvider.issued` for the tests to compare with what the app shows.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HOST = "127.0.0.1"
CODE_TTL_S = 60


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass
class LocalOpenIDProvider:
    """The provider's state; :func:`openid_provider` serves it. ``redirect_uri`` is the one
    registered callback (the app's ``/oauth2callback``)."""

    client_id: str
    client_secret: str
    redirect_uri: str
    issuer: str = ""
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    kid: str = field(default_factory=lambda: secrets.token_hex(4))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    issued: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email",
                                 "email_verified", "name"],
        }

    def jwks(self) -> dict[str, Any]:
        pub = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": _int_b64(pub.n), "e": _int_b64(pub.e)}]}

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS, RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 section 3.3)."""
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (b64url(json.dumps(header).encode()) + "."
                         + b64url(json.dumps(claims).encode()))
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                  hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def new_code(self, email: str, name: str, nonce: str, verified: bool = True) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {"email": email, "name": name, "nonce": nonce,
                                "verified": verified, "expires": time.time() + CODE_TTL_S}
        return code

    def redeem(self, code: str) -> dict[str, Any] | None:
        """The token response for a code (once; ``None`` for an unknown or used code)."""
        with self.lock:
            grant = self.codes.pop(code, None)
        if grant is None or grant["expires"] < time.time():
            return None
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id,
                  "sub": hashlib.sha256(grant["email"].lower().encode()).hexdigest()[:24],
                  "iat": now, "exp": now + 600, "email": grant["email"],
                  "email_verified": grant["verified"], "name": grant["name"]}
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        with self.lock:
            self.issued.append(claims)
        return {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                "expires_in": 600, "id_token": self.sign(claims), "scope": "openid email profile"}


_FORM = """<!doctype html><html><head><title>Sign in: Test school</title></head><body>
<h1>Test school sign-in</h1>
<form method="post" action="/authorize">
<input type="hidden" name="tx" value="{tx}">
<label>E-mail <input name="email" type="email" required></label>
<label>Name <input name="name"></label>
<label><input name="unverified" type="checkbox"> Address not verified</label>
<button type="submit">Sign in</button>
</form></body></html>"""


def _handler(provider: LocalOpenIDProvider) -> type[BaseHTTPRequestHandler]:
    pending: dict[str, dict[str, str]] = {}  # sign-in form transactions

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: str | dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            kind = "application/json" if isinstance(body, dict) else "text/html; charset=utf-8"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(size, 65536)).decode()
            return {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._send(200, provider.metadata())
            elif url.path == "/jwks":
                self._send(200, provider.jwks())
            elif url.path == "/authorize":
                if (query.get("client_id") != provider.client_id
                        or query.get("redirect_uri") != provider.redirect_uri
                        or query.get("response_type") != "code"
                        or "openid" not in query.get("scope", "").split()):
                    self._send(400, "<p>unknown client, redirect_uri or response type</p>")
                    return
                tx = secrets.token_urlsafe(12)
                pending[tx] = {"state": query.get("state", ""),
                               "nonce": query.get("nonce", "")}
                self._send(200, _FORM.format(tx=html.escape(tx)))
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            form = self._form()
            if url.path == "/authorize":
                tx = pending.pop(form.get("tx", ""), None)
                if tx is None or not form.get("email"):
                    self._send(400, "<p>sign-in expired: start again</p>")
                    return
                code = provider.new_code(form["email"], form.get("name", ""), tx["nonce"],
                                         verified=not form.get("unverified"))
                target = provider.redirect_uri + "?" + urllib.parse.urlencode(
                    {"code": code, "state": tx["state"]})
                self._send(302, "", {"Location": target})
            elif url.path == "/token":
                client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    raw = base64.b64decode(auth[6:]).decode()
                    client_id, _, secret = (urllib.parse.unquote(p) for p in raw.partition(":"))
                if (client_id != provider.client_id or secret != provider.client_secret):
                    self._send(401, {"error": "invalid_client"})
                    return
                if (form.get("grant_type") != "authorization_code"
                        or form.get("redirect_uri") != provider.redirect_uri):
                    self._send(400, {"error": "invalid_request"})
                    return
                answer = provider.redeem(form.get("code", ""))
                if answer is None:
                    self._send(400, {"error": "invalid_grant"})
                    return
                self._send(200, answer)
            else:
                self._send(404, {"error": "not_found"})

    return Handler


@contextlib.contextmanager
def openid_provider(redirect_uri: str, client_id: str = "playground",
                    client_secret: str | None = None,
                    port: int = 0) -> Iterator[LocalOpenIDProvider]:
    """Serve a :class:`LocalOpenIDProvider` on a loopback ``port`` (0: a free one) until the
    block ends."""
    provider = LocalOpenIDProvider(client_id, client_secret or secrets.token_urlsafe(16),
                                   redirect_uri)
    server = ThreadingHTTPServer((HOST, port), _handler(provider))
    provider.issuer = f"http://{HOST}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="oidc-provider")
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def auth_secrets(provider: LocalOpenIDProvider, cookie_secret: str | None = None) -> str:
    """The ``[auth]`` section of a ``secrets.toml`` for an app that logs in at ``provider``."""
    values = {"redirect_uri": provider.redirect_uri,
              "cookie_secret": cookie_secret or secrets.token_urlsafe(32),
              "client_id": provider.client_id, "client_secret": provider.client_secret,
              "server_metadata_url": provider.metadata_url}
    return "[auth]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.oidc_provider --app-port 8501``: serve a provider for trying the login
    by hand; prints the ``[auth]`` section to put in ``.streamlit/secrets.toml``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--app-port", type=int, default=8501,
                        help="the port `streamlit run app.py` listens on (default 8501)")
    parser.add_argument("--port", type=int, default=8600,
                        help="the provider's own port on 127.0.0.1 (default 8600)")
    args = parser.parse_args(argv)
    callback = f"http://localhost:{args.app_port}/oauth2callback"
    with contextlib.ExitStack() as stack:
        try:
            provider = stack.enter_context(
                openid_provider(callback, port=args.port, client_secret="not-a-secret"))
        except OSError as err:
            print(f"error: cannot listen on 127.0.0.1:{args.port}: {err.strerror}",
                  file=sys.stderr)
            return 2
        print("# a throwaway OpenID provider for trying the login; put this in "
              ".streamlit/secrets.toml,\n# open http://localhost:"
              f"{args.app_port}, and stop the provider with Ctrl+C\n")
        print(auth_secrets(provider), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
