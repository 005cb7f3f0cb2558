"""Who may use the UI: the access token, and CSRF protection for the actions.

Bound to a loopback address the UI trusts the machine's users, like the CLI does; bound
anywhere else it needs a token on every request (``Authorization: Bearer``, or the cookie
that ``?token=`` sets once). Actions are POSTs carrying a per-process CSRF token that
only a page this server rendered knows (another origin cannot read it).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "dolmen_ui_token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_token_for(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"binding the UI to {host!r} (not a loopback address) needs a token: "
            "pass --token or set DOLMEN_UI_TOKEN"
        )


def same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


class TokenGuard:
    """ASGI middleware: every HTTP request must carry ``token`` (when one is set)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.token:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = self.check(request)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def check(self, request: Request) -> Response | None:
        assert self.token
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and same(header[7:], self.token):
            return None
        if same(request.cookies.get(COOKIE), self.token):
            return None
        if same(request.query_params.get("token"), self.token):
            # Once: the cookie carries it from now on, and the URL loses it (no token in
            # the history or in Referer headers).
            query = urlencode([kv for kv in request.query_params.multi_items() if kv[0] != "token"])
            target = request.url.path + (f"?{query}" if query else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        return PlainTextResponse(
            "dolmen ui: this server needs its token (?token=..., or Authorization: Bearer)\n",
            status_code=401,
        )


class Csrf:
    """The token forms carry; one per server process."""

    def __init__(self) -> None:
        self.value = secrets.token_urlsafe(32)

    def valid(self, submitted: object) -> bool:
        return isinstance(submitted, str) and same(submitted, self.value)
