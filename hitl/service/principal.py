"""Who a request acts as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who a request acts as. `via` says how they proved it (for the audit log)."""

    name: str
    roles: frozenset[str]
    kind: str = "user"
    via: str = "token"

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles
