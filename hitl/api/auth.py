"""Authentication: the one place where a request becomes a principal, for every route.

The front door (`hitl.api.front`) calls it for every request, before anything that answers
one — the cookbook's fast path, the FastAPI routes, the pages — so no path reaches a handler
without passing here. A request proves who it is with `Authorization: Bearer <token>`, a
session cookie (the web pages), or, where configured, a user header set by a trusted
authenticating proxy. The principal goes into
the request's scope (`deps.principal`); what it may do is decided by the service
(`hitl.service.access`). Anonymous requests get 401, except the health checks, the sign-in
pages and static assets; a page asked for by a browser redirects to sign-in instead.

A cookie-authenticated request that changes state must come from a page of this server: its
`Origin` (or, lacking one, `Referer`) must name this server, or it gets 403 (CSRF).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.types import Scope

from hitl.api import errors, jsonio
from hitl.service import Unavailable
from hitl.service.identity import Identity
from hitl.service.principal import Principal

COOKIE = "hitl_session"
OPEN = frozenset({"/healthz", "/readyz", "/login", "/logout", "/favicon.ico"})
OPEN_PREFIXES = ("/static/", "/login/", "/auth/")
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = 'Bearer realm="hitl"'
SIGN_IN = (
    "sign in: send `Authorization: Bearer <token>` (`hitl token create` makes one), "
    "or open a sign-in link (`hitl login-link NAME`)"
)


def is_open(path: str) -> bool:
    return path in OPEN or path.startswith(OPEN_PREFIXES)


class Authenticator:
    """Finds who a request acts as (`admit`), for the front door (`hitl.api.front`)."""

    def __init__(
        self,
        identity: Identity,
        proxy_header: str | None = None,
        proxies: frozenset[str] = frozenset(),
    ) -> None:
        self.identity = identity
        self.proxy_header = proxy_header.lower() if proxy_header else None
        self.proxies = proxies

    async def admit(self, scope: Scope) -> Response | None:
        """Put the request's principal into its scope; or the answer that refuses it."""
        headers = Headers(scope=scope)
        try:
            principal, problem = await self._principal(scope, headers)
        except Unavailable as exc:
            if is_open(scope["path"]):
                # Who asks cannot be looked up, but these need nobody: the health checks say
                # how the database is in their own answers, and /healthz that the process is up.
                return None
            return errors.respond(exc)
        if principal is None:
            return None if is_open(scope["path"]) else self._refusal(scope, headers, problem)
        changes = scope.get("method", "GET") not in SAFE
        if principal.via == "session" and changes and not same_origin(headers, scope):
            detail = (
                "cross-site request refused: a signed-in page of another site cannot "
                "change anything here (CSRF); send the request from this server's pages"
            )
            return jsonio.JSONResponse({"detail": detail}, 403)
        scope.setdefault("state", {})["principal"] = principal
        return None

    async def _principal(self, scope: Scope, headers: Headers) -> tuple[Principal | None, str]:
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return None, "the Authorization header must be `Bearer <token>`"
            principal = await self.identity.authenticate(token)
            if principal is None:
                return None, "the token is unknown, revoked or expired: " + SIGN_IN
            return principal, ""
        cookie = headers.get("cookie")
        if cookie:
            secret = cookie_parser(cookie).get(COOKIE)
            if secret:
                principal = await self.identity.session(secret)
                if principal is not None:
                    return principal, ""
                return None, "the session has ended: sign in again"
        if self.proxy_header is not None:
            client = scope.get("client")
            name = _utf8(headers.get(self.proxy_header))
            if name and client is not None and client[0] in self.proxies:
                principal = await self.identity.named(name)
                if principal is None:
                    return None, f"the proxy's user {name!r} is not a user here: add it"
                return principal, ""
        return None, SIGN_IN

    def _refusal(self, scope: Scope, headers: Headers, problem: str) -> Response:
        wants_page = (
            scope.get("method") == "GET"
            and "text/html" in headers.get("accept", "")
            and "authorization" not in headers
        )
        if wants_page:
            target = scope["path"] + (
                "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
            )
            return RedirectResponse("/login?next=" + quote(target, safe=""), 303)
        challenge = CHALLENGE + (', error="invalid_token"' if "token" in problem else "")
        return jsonio.JSONResponse({"detail": problem}, 401, {"WWW-Authenticate": challenge})


def _utf8(value: str | None) -> str | None:
    """A header's text as its sender meant it: proxies send UTF-8, which arrives as Latin-1."""
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class NoAuth:
    """`HITL_AUTH=false`: every request acts as the process itself (principal None)."""

    async def admit(self, scope: Scope) -> Response | None:
        scope.setdefault("state", {})["principal"] = None
        return None


def same_origin(headers: Headers, scope: Scope) -> bool:
    """Whether the request's `Origin` (or `Referer`) is this server, as the client named it."""
    source = headers.get("origin") or headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    host = headers.get("host", "")
    return bool(parts.netloc) and parts.netloc.lower() == host.lower()
