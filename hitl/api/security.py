"""The Host check and the security headers, which the front door (`hitl.api.front`) applies
to every request and every answer: pages, the API, the cookbook's fast path, static files,
/docs, and errors (404, 413, a 500).

A request whose `Host` is not allowed (`HostPolicy`) is answered 400 before anything else sees
it. That closes DNS rebinding: a page on another site that makes its own name resolve to the
address hitl listens on gets its browser to talk to hitl, but the browser sends that name as
the Host. The loopback names are always allowed: a rebinding site cannot make a browser send
them.

Every answer gets `HEADERS` on its `http.response.start` message; bodies pass untouched, so
event streams stream. A response that sets one of these headers itself keeps its own.

Answers that uvicorn gives without calling the app (400 for a request it cannot parse; 431 and
408 from `hitl.server` for a request head too large or too slow) do not pass here.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Message, Scope, Send

from hitl.config import Settings, is_loopback

# Scripts, styles, fonts, connections and frames from this origin only; no inline script or
# style, no plugin, no <base>; forms post here; no site may frame a page.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # Swagger UI's stylesheet draws its icons as data: images
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors, for browsers that predate it
)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Addresses that mean "every interface": no client sends one as its Host (and a browser that
# sends 0.0.0.0 reaches this machine from any page: it must be allowed by name, if at all).
EVERY_INTERFACE = ("", "0.0.0.0", "::")


def host_name(value: str) -> str:
    """A Host header's value, or an allowed host, as they are compared: in lower case,
    without a port or a final dot, an IPv6 address in brackets."""
    name = value.strip().lower()
    if name.startswith("["):
        end = name.find("]")
        return name[: end + 1] if end > 0 else name
    if name.count(":") > 1:  # an IPv6 address without brackets, as HITL_HOST gives one
        return f"[{name}]"
    return name.split(":", 1)[0].removesuffix(".")


@dataclass(frozen=True)
class HostPolicy:
    """The Host header values served: exact names, `*.example.com` (its subdomains), `*`."""

    names: tuple[str, ...]
    suffixes: tuple[str, ...] = ()
    any: bool = False
    warning: str | None = None  # what the settings leave to chance, said at start-up

    @classmethod
    def of(cls, settings: Settings) -> HostPolicy:
        """HITL_ALLOWED_HOSTS and the loopback names; unset, the loopback names and the
        address listened on, with a warning unless that is a loopback address."""
        entries = settings.allowed_hosts
        if entries is None:
            entries = [] if settings.host in EVERY_INTERFACE else [settings.host]
        exact = [e for e in entries if not e.startswith("*")]
        names = tuple(dict.fromkeys(host_name(e) for e in (*LOOPBACK_NAMES, *exact)))
        suffixes = tuple(e[1:] for e in entries if e.startswith("*."))
        warning = None
        if settings.allowed_hosts is None and not is_loopback(settings.host):
            warning = (
                f"hitl listens on {settings.host or 'every address'} and HITL_ALLOWED_HOSTS is "
                f"not set: only requests for {', '.join(names)} are served (others get 400); "
                "set HITL_ALLOWED_HOSTS (or --allowed-host) to the names that clients use, "
                "e.g. HITL_ALLOWED_HOSTS=hitl.example.com"
            )
        return cls(names, suffixes, "*" in entries, warning)

    def allows(self, host: str | None) -> bool:
        """Whether to serve a request with this Host (`host_name`; None: it sent none)."""
        if self.any:
            return True
        return host is not None and (host in self.names or host.endswith(self.suffixes))


def refusal(host: str | None) -> str:
    if host is None:
        return "the request has no Host header: send one (HTTP/1.1 requires it)"
    return f"host '{host}' is not allowed: add it to HITL_ALLOWED_HOSTS"


class Hosts:
    """The Host check: a `HostPolicy`, remembering the header values it allowed (a few)."""

    def __init__(self, policy: HostPolicy) -> None:
        self.policy = policy
        self._served: set[bytes] = set()

    def refusal(self, scope: Scope) -> str | None:
        """None if the request's Host is served; else why not, and what to do."""
        raw = _raw_host(scope)
        if raw in self._served:
            return None
        host = host_name(raw.decode("latin-1")) if raw is not None else None
        if not self.policy.allows(host):
            return refusal(host)
        if raw is not None and len(self._served) < 1000:
            self._served.add(raw)
        return None


def _raw_host(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"host":
            return bytes(value)
    return None


def secured(response: Response) -> Response:
    """`response` with `HEADERS`, except those it sets itself."""
    present = {name for name, _ in response.raw_headers}
    response.raw_headers += [header for header in HEADERS if header[0] not in present]
    return response


def with_headers(send: Send) -> Send:
    """`send`, putting `HEADERS` on the answer's start (except those the app set itself)."""

    async def sending(message: Message) -> None:
        if message["type"] != "http.response.start":  # the body: most messages, as they are
            await send(message)
            return
        headers = list(message.get("headers", ()))
        present = {name.lower() for name, _ in headers}
        headers += [header for header in HEADERS if header[0] not in present]
        await send({**message, "headers": headers})

    return sending
