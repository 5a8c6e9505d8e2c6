from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

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


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
