"""The flows a server can run, by name, each from a factory that builds a fresh graph."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

from pocketflow import BaseNode

from hitl.config import Settings
from hitl.flow.default import create_feedback_flow
from hitl.service.errors import Invalid

FlowFactory = Callable[[], BaseNode]


class BadFlowSpec(ValueError):
    """A flow must be given as name=module.path:factory (or module.path:factory)."""


def load_factory(spec: str) -> tuple[str, FlowFactory]:
    """Import `name=pkg.mod:attr`; the name defaults to attr without create_ and _flow."""
    name, _, target = spec.rpartition("=")
    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise BadFlowSpec(f"bad flow {spec!r}: write name=package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BadFlowSpec(f"cannot load flow {spec!r}: {exc}") from exc
    if not callable(factory):
        raise BadFlowSpec(f"flow {spec!r} is not callable")
    if not name:
        name = attr.removeprefix("create_").removesuffix("_flow") or attr
    return name, factory


class FlowRegistry:
    def __init__(self, default: str = "feedback") -> None:
        self.default = default
        self._factories: dict[str, FlowFactory] = {}

    def add(self, name: str, factory: FlowFactory) -> None:
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def resolve(self, name: str | None) -> str:
        chosen = name or self.default
        if chosen not in self._factories:
            raise Invalid(f"unknown flow {chosen!r}; this server runs: {', '.join(self.names())}")
        return chosen

    def create(self, name: str) -> BaseNode:
        return self._factories[self.resolve(name)]()


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
    for spec in settings.flows:
        name, factory = load_factory(spec)
        registry.add(name, factory)
    registry.resolve(None)
    return registry


def describe(registry: FlowRegistry) -> dict[str, Any]:
    return {"default": registry.default, "flows": registry.names()}
