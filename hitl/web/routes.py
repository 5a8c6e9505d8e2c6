from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hitl.api.auth import COOKIE, same_origin
from hitl.api.deps import address_of, principal_of
from hitl.service import Conflict, Forbidden, Invalid, NotFound, access, notify

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


def administers(request: Request) -> bool:
    """Whether the page's nav shows the admins' links: never to someone not signed in (the
    sign-in pages), else as the service's rule says."""
    state = request.scope.get("state") or {}
    return "principal" in state and access.may_administer(state["principal"])


templates.env.globals["administers"] = administers


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """What browsers ask for when a page names no icon (a JSON answer opened in a tab, say):
    the pages' own, so that none of them meets a 404."""
    icon, headers = HERE / "static" / "favicon.svg", {"Cache-Control": "public, max-age=86400"}
    return FileResponse(icon, media_type="image/svg+xml", headers=headers)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    flows = request.app.state.service.registry
    return templates.TemplateResponse(
        request, "index.html", {"flows": flows.names(), "default_flow": flows.default}
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, task_id: str) -> HTMLResponse:
    """A task's page, under its full id (the link may give a short one); a page that says
    so, with 404, for a task that does not exist or that the person may not see, and 409 for
    a short id that several tasks' ids share."""
    tasks = request.app.state.service.tasks
    try:
        task, _ = await tasks.get(task_id, by=principal_of(request.scope))
    except (NotFound, Conflict) as exc:
        status = 404 if isinstance(exc, NotFound) else 409
        context = {"task_id": task_id, "problem": exc.message, "ambiguous": status == 409}
        return templates.TemplateResponse(request, "task_missing.html", context, status_code=status)
    context = {"task_id": task.id, "short_id": task.id[-8:]}
    return templates.TemplateResponse(request, "task.html", context)


@router.get("/reviews", response_class=HTMLResponse)
async def queue_page(request: Request) -> HTMLResponse:
    """The reviewers' queue; its filters are read from the query string by its script."""
    flows = request.app.state.service.registry
    return templates.TemplateResponse(request, "queue.html", {"flows": flows.names()})


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request) -> HTMLResponse:
    """Notifications, for admins: the channels, adding one, the delivery log (its script
    drives the API). Anyone else signed in gets a page that says what is missing, with 403."""
    try:
        access.administer(principal_of(request.scope), "manage notification channels")
    except Forbidden as exc:
        refusal = {"refused": exc.message}
        return templates.TemplateResponse(request, "settings.html", refusal, status_code=403)
    defaults = {"webhook": notify.WEBHOOK_EVENTS, "apprise": notify.APPRISE_EVENTS}
    context: dict[str, object] = {"refused": None, "events": notify.EVENTS, "defaults": defaults}
    return templates.TemplateResponse(request, "settings.html", context)


@router.get("/classic", response_class=HTMLResponse)
async def classic_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "classic.html", {})


@router.get("/docs", response_class=HTMLResponse)
async def docs_page(request: Request) -> HTMLResponse:
    """The API's try-it page: Swagger UI from /static/swagger, started by a script file (the
    CSP runs no inline script, so FastAPI's own page, and its CDN, are not used)."""
    return templates.TemplateResponse(
        request, "docs.html", {"openapi_url": request.app.openapi_url}
    )


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    """How to sign in: a one-time link from an admin (`hitl login-link NAME`), or the
    identity provider where one is configured."""
    return login_response(request, next)


@router.get("/login/{secret}", response_model=None)
async def confirm_login_link(request: Request, secret: str, next: str = "/") -> Response:
    """A one-time link asks first: "sign in as NAME?". Opening it changes nothing, so another
    site cannot sign a visitor in as someone else (login CSRF) by sending them to a link."""
    name = await request.app.state.service.identity.link_user(secret)
    if name is None:
        return login_response(request, "/", LINK_GONE, 400)
    return login_response(request, next, confirm=name)


@router.post("/login/{secret}", response_model=None)
async def use_login_link(request: Request, secret: str, next: str = "/") -> Response:
    """Sign in with a one-time link, from its own page: a session cookie, and on to the page
    asked for."""
    if not same_origin(request.headers, request.scope):
        raise HTTPException(403, "cross-site request refused: sign in from this server's page")
    identity = request.app.state.service.identity
    hours = request.app.state.service.settings.session_hours
    address = address_of(request.scope)
    try:
        session, _ = await identity.sign_in(secret, hours * 3600, address)
    except Invalid as exc:
        return login_response(request, "/", exc.message, 400)
    return signed_in(request, session, next)


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    """Sign out: the session ends on the server, and its cookie is dropped. Only from this
    server's pages: another site's form would make the browser drop the cookie even when
    SameSite kept it from being sent."""
    if not same_origin(request.headers, request.scope):
        raise HTTPException(403, "cross-site request refused: sign out from this server's page")
    secret = request.cookies.get(COOKIE)
    if secret:
        address = address_of(request.scope)
        await request.app.state.service.identity.sign_out(secret, address)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, httponly=True, samesite="lax")
    return response


LINK_GONE = "this sign-in link is unknown, used or expired: ask for a new one"


def login_response(
    request: Request,
    next: str = "/",
    problem: str | None = None,
    status_code: int = 200,
    confirm: str | None = None,
) -> HTMLResponse:
    """The sign-in page; with `problem`, why the last try failed (it also says how to retry);
    with `confirm`, the question a sign-in link asks before it is used."""
    settings = request.app.state.service.settings
    provider = urlsplit(settings.oidc_issuer).hostname if settings.oidc else None
    context = {"next": _local(next), "problem": problem, "provider": provider}
    context["confirm"] = confirm
    return templates.TemplateResponse(request, "login.html", context, status_code=status_code)


def signed_in(request: Request, session: str, next: str) -> RedirectResponse:
    """On to the page asked for, with the new session's cookie."""
    seconds = int(request.app.state.service.settings.session_hours * 3600)
    response = RedirectResponse(_local(next), 303)
    response.set_cookie(
        COOKIE,
        session,
        max_age=seconds,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _local(target: str) -> str:
    """Only a path on this server to go on to after sign-in: never another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    if app.state.service.settings.oidc:
        from hitl.web import oidc  # Authlib is imported only where OIDC is configured

        app.mount("/auth/oidc", oidc.application(app.state.service), name="oidc")
