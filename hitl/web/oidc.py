"""Sign-in with an OpenID Connect provider (`HITL_OIDC_*`), by Authlib's Starlette client.

`GET /auth/oidc/login?next=/x` sends the browser to the provider (authorization code flow
with state, nonce and PKCE S256); `GET /auth/oidc/callback` exchanges the code, has Authlib
check the ID token (signature, issuer, audience, nonce, expiry), and signs the person in as
the hitl user named by its `preferred_username` (or `email`), with the roles its roles claim
gives (`Identity.sign_in_external`). Then the browser holds an ordinary hitl session.

Between the two requests, the flow's state (state, nonce, PKCE verifier, the page asked for)
lives in a signed cookie, `hitl_oidc`, on `/auth/oidc/` only, for ten minutes: Starlette's
`SessionMiddleware` around these two routes alone. Its key is derived from the client
secret, so every `hitl serve` process of one deployment accepts it, and a restart loses no
sign-in in flight.

Whatever goes wrong — the provider unreachable, a callback with a forged state or no code,
the provider refusing, an ID token that does not verify — is the sign-in page with a line
that says what happened (400, 403 or 502), and a button to try again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc.errors import JoseError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hitl.api.deps import address_of
from hitl.service import Forbidden, Invalid, Service
from hitl.service.identity import ROLES
from hitl.web.routes import login_response, signed_in

log = logging.getLogger(__name__)

STATE_COOKIE = "hitl_oidc"
STATE_SECONDS = 600
NEXT = "next"  # the page asked for, kept in the state cookie beside Authlib's own keys
MAX_NEXT = 1000  # longer, and the cookie could grow past what browsers keep
# The provider's discovery document must name these; Authlib needs them all.
ENDPOINTS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
# The provider did not answer, or not with JSON (Authlib reads it with httpx2).
UNREACHABLE = (httpx2.HTTPError, json.JSONDecodeError)


def roles_from_claim(value: object) -> frozenset[str]:
    """hitl's roles in a roles claim: a list of names, or one string of names separated by
    spaces or commas. Names that are not hitl roles (another application's) are left out."""
    if isinstance(value, str):
        names = value.replace(",", " ").split()
    elif isinstance(value, list):
        names = [item.strip() for item in value if isinstance(item, str)]
    else:
        names = []
    return frozenset(names) & frozenset(ROLES)


class ProviderError(Exception):
    """The provider answered wrongly, or not at all: 502."""


class OidcSignIn:
    def __init__(self, service: Service) -> None:
        settings = service.settings
        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
        self.identity = service.identity
        self.session_seconds = settings.session_hours * 3600
        self.issuer = settings.oidc_issuer
        self.provider = urlsplit(self.issuer).hostname or self.issuer
        self.claim = settings.oidc_roles_claim
        self.client: Any = OAuth().register(
            "oidc",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            server_metadata_url=self.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
        )

    async def login(self, request: Request) -> Response:
        next = request.query_params.get("next", "/")
        if len(next) > MAX_NEXT:
            next = "/"
        try:
            await self._metadata()
            callback = str(request.url_for("oidc:callback"))  # "oidc": routes.mount's name
            response: Response = await self.client.authorize_redirect(request, callback)
        except ProviderError as exc:
            return self._refuse(request, next, str(exc), 502)
        request.session[NEXT] = next
        return response

    async def callback(self, request: Request) -> Response:
        query = request.query_params
        next = str(request.session.pop(NEXT, "/"))
        if "error" in query:
            said = _said(query["error"], query.get("error_description"))
            return self._refuse(request, next, f"{self.provider} did not sign you in: {said}.")
        if not query.get("code") or not query.get("state"):
            problem = f"the answer from {self.provider} has no code or no state."
            return self._refuse(request, next, problem)
        try:
            claims = await self._claims(request)
        except ProviderError as exc:
            return self._refuse(request, next, str(exc), 502)
        except OAuthError as exc:
            return self._refuse(request, next, _oauth_problem(exc, self.provider))
        except (AuthlibBaseError, JoseError) as exc:
            problem = f"the ID token from {self.provider} does not verify ({exc})."
            return self._refuse(request, next, problem)
        return await self._sign_in(request, claims, next)

    async def _sign_in(self, request: Request, claims: dict[str, Any], next: str) -> Response:
        email = claims.get("email")
        email = email if isinstance(email, str) else None
        name = claims.get("preferred_username")
        if not isinstance(name, str) or not name.strip():
            # An address the provider says it has not verified names nobody.
            name = email if claims.get("email_verified") is not False else None
        if name is None:
            problem = (
                f"{self.provider} gives no preferred_username, nor a verified email, to name "
                "you by: ask an admin to have HITL_OIDC_SCOPES ask for profile or email."
            )
            return self._refuse(request, next, problem, 502)
        address = address_of(request.scope)
        subject = claims.get("sub")
        try:
            session, _ = await self.identity.sign_in_external(
                name,
                email,
                roles_from_claim(claims.get(self.claim)),
                "oidc",
                self.session_seconds,
                address,
                subject=None if subject is None else str(subject),
            )
        except Forbidden as exc:
            return self._refuse(request, next, exc.message + ".", 403)
        except Invalid as exc:
            return self._refuse(request, next, f"{self.provider} names you so: {exc.message}.")
        return signed_in(request, session, next)

    async def _claims(self, request: Request) -> dict[str, Any]:
        """The verified ID token's claims; those it lacks, from the userinfo endpoint (some
        providers put the roles only there)."""
        try:
            token = await self.client.authorize_access_token(request)
            claims = dict(token.get("userinfo") or {})
            if not claims:
                raise ProviderError(f"{self.provider} sent no ID token.")
            metadata = await self._metadata()
            wanted = (self.claim, "preferred_username", "email")
            if metadata.get("userinfo_endpoint") and any(c not in claims for c in wanted):
                more = dict(await self.client.userinfo(token=token))
                if more.get("sub") == claims.get("sub"):
                    claims = more | claims
        except UNREACHABLE as exc:
            raise ProviderError(_unreachable(self.provider, exc)) from exc
        return claims

    async def _metadata(self) -> dict[str, Any]:
        """The provider's discovery document, read once (until it is found wanting)."""
        try:
            metadata: dict[str, Any] = await self.client.load_server_metadata()
        except UNREACHABLE as exc:
            raise ProviderError(_unreachable(self.provider, exc)) from exc
        lacking = [key for key in ENDPOINTS if not isinstance(metadata.get(key), str)]
        named = str(metadata.get("issuer", "")).rstrip("/")
        if lacking or named != self.issuer.rstrip("/"):
            self.client.server_metadata.clear()  # read it again next time
            what = f"lacks {', '.join(lacking)}" if lacking else f"names the issuer {named!r}"
            raise ProviderError(
                f"the discovery document of {self.provider} {what}, not what "
                "HITL_OIDC_ISSUER says: ask an admin to check it."
            )
        return metadata

    def _refuse(self, request: Request, next: str, problem: str, status: int = 400) -> Response:
        log.warning(
            "OpenID Connect sign-in failed: %s",
            problem,
            extra={"action": "oidc.refused", "status": status},
        )
        if status != 403:  # a refusal says whom to ask; anything else may go better again
            problem += " Sign in again below."
        return login_response(request, next, problem, status)


def _oauth_problem(exc: OAuthError, provider: str) -> str:
    if exc.error == "mismatching_state":
        return (
            "this answer from the identity provider belongs to no sign-in started in this "
            "browser, or to one started more than ten minutes ago."
        )
    return f"{provider} refused the sign-in: {_said(exc.error, exc.description)}."


def _said(error: str, description: str | None) -> str:
    """An error code and its description, as the provider (or a forged link) put them."""
    text = error + (f" ({description})" if description else "")
    return text[:300]


def _unreachable(provider: str, exc: Exception) -> str:
    if isinstance(exc, httpx2.HTTPStatusError):
        what = f"{exc.response.status_code} from {exc.request.url}"
    else:
        what = f"{type(exc).__name__}: {exc}"
    return (
        f"the identity provider {provider} did not answer as it should ({what}). Wait a "
        "moment; if it goes on, ask an admin to check HITL_OIDC_ISSUER."
    )


def state_key(client_secret: str) -> str:
    """The state cookie's signing key: the client secret's, not the secret itself."""
    return hmac.new(client_secret.encode(), b"hitl oidc state cookie", hashlib.sha256).hexdigest()


def application(service: Service) -> Starlette:
    """The two routes, mounted at /auth/oidc, inside the session that holds their state."""
    sign_in = OidcSignIn(service)
    secret = service.settings.oidc_client_secret
    assert secret is not None
    app = Starlette(
        routes=[
            Route("/login", sign_in.login, methods=["GET"]),
            Route("/callback", sign_in.callback, methods=["GET"], name="callback"),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=state_key(secret.get_secret_value()),
                session_cookie=STATE_COOKIE,
                max_age=STATE_SECONDS,
                path="/auth/oidc/",
                same_site="lax",
            )
        ],
    )
    app.state.service = service  # the sign-in page reads the settings from there
    return app
