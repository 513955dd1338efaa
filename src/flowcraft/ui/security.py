"""The dashboard's guards: loopback binds, the access token, CSRF tokens, Host checks.

- Bound to a loopback address (the default), the dashboard answers only requests whose
  ``Host`` names a loopback address (a page of another site cannot reach it through
  DNS rebinding). Any other bind needs a token (``flowcraft ui --token``).
- With a token, every request carries it: the ``Authorization: Bearer T`` or
  ``X-Flowcraft-Token`` header, or the ``flowcraft_token`` cookie, which opening
  ``/?token=T`` once sets (then the address bar loses the token). Compared in constant
  time.
- Every POST carries a CSRF token: an HMAC, under a key made when the server starts, of
  the browser's session cookie (``SameSite=Strict``, ``HttpOnly``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

__all__ = [
    "SESSION_COOKIE",
    "TOKEN_COOKIE",
    "TOKEN_HEADER",
    "Guard",
    "is_loopback",
]

SESSION_COOKIE = "flowcraft_session"
TOKEN_COOKIE = "flowcraft_token"
TOKEN_HEADER = "x-flowcraft-token"
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is loopback."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """Decides who may use the dashboard.

    Args:
        host: the address the server binds.
        token: the access token (required unless ``host`` is loopback).
        allowed_hosts: more ``Host`` names to accept besides loopback ones and ``host``.

    Raises:
        ValueError: ``host`` is not loopback and no token is given.
    """

    def __init__(self, host: str, token: str | None = None, *, allowed_hosts: tuple[str, ...] = ()) -> None:
        if token is not None and not token.strip():
            raise ValueError("--token must not be empty")
        if not is_loopback(host) and token is None:
            raise ValueError(
                f"flowcraft ui binds {host}, which other machines can reach: give --token T (every request "
                "then needs it), or bind 127.0.0.1"
            )
        self.host = host
        self.token = token
        self.loopback = is_loopback(host)
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self._key = secrets.token_bytes(32)

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's ``Host`` header may reach this server (loopback binds only
        answer loopback names: DNS rebinding)."""
        if not self.loopback:
            return True  # the token protects it
        name = _host_name(header or "").lower()
        return is_loopback(name) or name in self.allowed_hosts or name == self.host.lower()

    def token_ok(self, presented: str | None) -> bool:
        """Whether ``presented`` is the token (always, without one); constant time."""
        if self.token is None:
            return True
        if not presented:
            return False
        return hmac.compare_digest(presented.encode("utf-8"), self.token.encode("utf-8"))

    @staticmethod
    def new_session() -> str:
        """A new random session id (the cookie's value)."""
        return secrets.token_urlsafe(24)

    def csrf_token(self, session: str) -> str:
        """The CSRF token of a session."""
        return hmac.new(self._key, b"csrf:" + session.encode("utf-8"), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: str | None, presented: str | None) -> bool:
        """Whether ``presented`` is the CSRF token of ``session``; constant time."""
        if not session or not presented:
            return False
        return hmac.compare_digest(self.csrf_token(session).encode("utf-8"), presented.encode("utf-8"))
