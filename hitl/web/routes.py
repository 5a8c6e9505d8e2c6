from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hitl.api.auth import COOKIE, same_origin
from hitl.service import Invalid

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    flows = request.app.state.service.registry
    return templates.TemplateResponse(
        request, "index.html", {"flows": flows.names(), "default_flow": flows.default}
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, task_id: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "task.html", {"task_id": task_id})


@router.get("/reviews", response_class=HTMLResponse)
async def queue_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "queue.html", {})


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
    """How to sign in: a one-time link from an admin (`hitl login-link NAME`)."""
    return templates.TemplateResponse(request, "login.html", {"next": _local(next)})


@router.get("/login/{secret}", response_model=None)
async def use_login_link(request: Request, secret: str, next: str = "/") -> Response:
    """Sign in with a one-time link: a session cookie, and on to the page asked for."""
    identity = request.app.state.service.identity
    hours = request.app.state.service.settings.session_hours
    address = request.client.host if request.client else None
    try:
        session, _ = await identity.sign_in(secret, hours * 3600, address)
    except Invalid as exc:
        context = {"next": "/", "problem": exc.message}
        return templates.TemplateResponse(request, "login.html", context, status_code=400)
    response = RedirectResponse(_local(next), 303)
    response.set_cookie(
        COOKIE,
        session,
        max_age=int(hours * 3600),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    """Sign out: the session ends on the server, and its cookie is dropped."""
    secret = request.cookies.get(COOKIE)
    if secret:
        if not same_origin(request.headers, request.scope):
            raise HTTPException(403, "cross-site request refused: sign out from this server's page")
        address = request.client.host if request.client else None
        await request.app.state.service.identity.sign_out(secret, address)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, httponly=True, samesite="lax")
    return response


def _local(target: str) -> str:
    """Only a path on this server to go on to after sign-in: never another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
