"""The flows a server can run, by name, each from a factory that builds a fresh graph."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from pocketflow import BaseNode

from hitl.config import Settings
from hitl.flow import Graph, graph_of, standalone
from hitl.flow.default import create_feedback_flow
from hitl.service.errors import Invalid, NotFound

FlowFactory = Callable[[], BaseNode]


class BadFlowSpec(ValueError):
    """A flow must be given as name=module.path:factory (or module.path:factory)."""


def load_factory(spec: str) -> tuple[str, FlowFactory]:
    """Import `name=pkg.mod:attr` or `name=path/to/file.py:attr`; the name defaults to attr
    without create_ and _flow."""
    name, _, target = spec.rpartition("=")
    module_name, colon, attr = target.rpartition(":")
    if not colon or not module_name or not attr:
        raise BadFlowSpec(
            f"bad flow {spec!r}: write name=package.module:factory or name=path/to/file.py:factory"
        )
    try:
        if module_name.endswith(".py"):
            module = _load_file(module_name)
        else:
            module = importlib.import_module(module_name)
        factory = getattr(module, attr)
    except (ImportError, AttributeError, OSError, SyntaxError) as exc:
        raise BadFlowSpec(f"cannot load flow {spec!r}: {exc}") from exc
    if not callable(factory):
        raise BadFlowSpec(f"flow {spec!r} is not callable")
    if not name:
        name = attr.removeprefix("create_").removesuffix("_flow") or attr
    return name, factory


def _load_file(path: str) -> ModuleType:
    """A flow module given by its file's path (relative to the working directory), imported
    once per process under a name made from its absolute path."""
    where = Path(path).resolve()
    if not where.is_file():
        raise ImportError(f"no file {str(where)!r}")
    name = "hitl_flow_" + "".join(c if c.isalnum() else "_" for c in str(where))
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, where)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {str(where)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as an import does (dataclasses need it)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class FlowRegistry:
    def __init__(self, default: str = "feedback") -> None:
        self.default = default
        self._factories: dict[str, FlowFactory] = {}
        self._graphs: dict[str, Graph] = {}

    def add(self, name: str, factory: FlowFactory) -> None:
        self._factories[name] = factory
        self._graphs.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def resolve(self, name: str | None) -> str:
        """The flow `name` names; None: the default. An empty name is refused, not read as
        the default: a caller that sent one meant some flow."""
        if name is not None and not name.strip():
            raise Invalid(
                f"flow is empty: name one this server runs ({', '.join(self.names())}), or "
                f"leave it out for the default ({self.default})"
            )
        chosen = self.default if name is None else name
        if chosen not in self._factories:
            raise Invalid(f"unknown flow {chosen!r}; this server runs: {', '.join(self.names())}")
        return chosen

    def create(self, name: str) -> BaseNode:
        return self._factories[self.resolve(name)]()

    def graph(self, name: str) -> Graph:
        """The nodes and edges of the flow `name`, as its factory builds them (read once: the
        same factory builds the same graph); NotFound for a flow this server does not run."""
        if name not in self._factories:
            raise NotFound(f"no flow {name!r}; this server runs: {', '.join(self.names())}")
        graph = self._graphs.get(name)
        if graph is None:
            graph = self._graphs[name] = graph_of(self._factories[name]())
        return graph


def build_registry(settings: Settings) -> FlowRegistry:
    registry = FlowRegistry(settings.default_flow)
    registry.add(
        "feedback",
        partial(
            create_feedback_flow,
            settings.process_delay,
            settings.review_deadline_seconds,
            settings.on_deadline,
        ),
    )
    registry.add(standalone.FLOW, standalone.create_review_flow)
    for spec in settings.flows:
        name, factory = load_factory(spec)
        if name == standalone.FLOW:
            raise BadFlowSpec(
                f"bad flow {spec!r}: the name {standalone.FLOW!r} is hitl's own (the reviews of "
                "POST /api/v1/reviews): give yours another name"
            )
        registry.add(name, factory)
    registry.resolve(None)
    return registry


def describe(registry: FlowRegistry) -> dict[str, Any]:
    return {"default": registry.default, "flows": registry.names()}
