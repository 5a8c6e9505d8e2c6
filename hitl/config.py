"""One settings object, from `HITL_*` environment variables and command-line flags."""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HITL_", extra="ignore")

    database_url: str = "sqlite:///./hitl.db"
    host: str = "127.0.0.1"
    # NoDecode: the variable is read by `_host_list`, which takes a JSON list or plain names
    # separated by commas, rather than by pydantic-settings, which takes JSON only.
    allowed_hosts: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Host header values served (`*`: any); unset: loopback names and the host "
        "listened on; the loopback names are always served",
    )
    port: int = Field(8000, ge=0, le=65535)
    process_delay: float = Field(1.0, ge=0, description="seconds the default processor sleeps")
    review_deadline_seconds: float | None = Field(
        None, gt=0, description="the default flow's reviews are decided after this long"
    )
    # Only approve: a rejection would rerun the default flow's processor and ask again, with a
    # new deadline, for ever when nobody looks.
    on_deadline: str | None = Field(
        None,
        pattern="^approve$",
        description="what the default flow's deadline decides: approve, or (unset) fail the task",
    )
    max_input_bytes: int = Field(1024 * 1024, ge=1)
    concurrency: int = Field(32, ge=1, description="tasks one process runs at once")
    run_workers: bool = True
    lease_seconds: float = Field(15.0, gt=0)
    poll_interval: float = Field(1.0, gt=0)
    heartbeat_seconds: float = Field(15.0, gt=0)
    max_claims: int = Field(10, ge=1, description="claims of one task before it is failed")
    pool_size: int = Field(10, ge=1)
    database_wait_seconds: float = Field(
        30.0, ge=0, description="how long start-up waits for the database to answer"
    )
    create_database: bool = Field(
        True,
        description="start-up creates the schema in a new, empty database (saying so); false "
        "refuses to start without an existing one",
    )
    flows: list[str] = Field(default_factory=list, description="name=module:factory entries")
    default_flow: str = "feedback"
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="where people open hitl, for the links in notifications; default "
        "http://HOST:PORT",
    )
    deadline_warning_seconds: float = Field(
        900.0,
        gt=0,
        description="a review's deadline is near (and notified) when less than this, and less "
        "than a fifth of its time, is left",
    )
    delivery_retry_seconds: float = Field(
        86400.0, gt=0, description="how long a notification is retried before it is failed"
    )
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        "text", description="text, or json: one JSON object a line, for log collectors"
    )
    max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="a request line and headers over this get 431"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="a request's headers not complete after this get 408"
    )
    keep_alive_seconds: float = Field(
        75.0,
        gt=0,
        description="an idle kept-alive connection is closed after this; longer than clients "
        "and proxies keep one idle (httpx 5 s, nginx and cloud load balancers 60 s)",
    )
    auth: bool = Field(
        True,
        description="every request but the health checks must sign in; false: anyone who can "
        "reach the port may do anything (allowed only on a loopback host)",
    )
    session_hours: float = Field(12.0, gt=0, description="how long a browser sign-in lasts")
    rate_limit: float = Field(
        50.0, ge=0, description="requests a second per principal (bursts of twice); 0: no limit"
    )
    max_streams: int = Field(
        20, ge=0, description="event streams one principal may hold open; 0: no limit"
    )
    max_comment_chars: int = Field(
        10_000, ge=0, description="the longest comment on a decision; 0: no limit"
    )
    proxy_user_header: str | None = Field(
        None,
        min_length=1,
        description="trust this request header (e.g. X-Forwarded-User) to name the user, "
        "from the addresses in HITL_TRUSTED_PROXIES only",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="addresses of authenticating proxies (JSON list)"
    )
    oidc_issuer: str | None = Field(
        None, description="the OpenID Connect provider to sign people in with (its issuer URL)"
    )
    oidc_client_id: str | None = Field(None, min_length=1)
    oidc_client_secret: SecretStr | None = Field(None, min_length=1)
    oidc_roles_claim: str = Field(
        "hitl_roles", min_length=1, description="the ID token claim that lists hitl's roles"
    )
    oidc_scopes: str = "openid email profile"
    llm_base_url: str | None = Field(
        None,
        description="an OpenAI-compatible API's base URL, before /chat/completions "
        "(http://127.0.0.1:11434/v1); hitl.llm's nodes call it",
    )
    llm_model: str | None = Field(None, min_length=1, description="the model hitl.llm asks")
    llm_api_key: SecretStr | None = Field(
        None, min_length=1, description="sent as `Authorization: Bearer`; never logged"
    )
    llm_max_retries: int = Field(
        4, ge=0, le=20, description="retries of a call (429, 5xx, connection errors)"
    )
    llm_backoff_seconds: float = Field(
        1.0, ge=0, description="the first retry's wait; each retry waits twice as long"
    )
    llm_timeout_seconds: float = Field(
        60.0, gt=0, description="how long a call waits for the endpoint's next bytes"
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _split_hosts(value)
        if isinstance(value, list):
            value = [v.strip().lower() if isinstance(v, str) else v for v in value]
            for name in value:
                if not isinstance(name, str):
                    continue  # pydantic says what it is
                if not name or any(c in name for c in _NOT_IN_HOST):
                    raise ValueError(
                        f"{name!r} is not a host name: give names as clients send them in "
                        "the Host header, such as hitl.example.com (no scheme, path or user)"
                    )
                if "*" in name.removeprefix("*.") and name != "*":
                    raise ValueError(
                        f"{name!r}: a star stands alone (`*`, any host) or starts a name "
                        "(`*.example.com`, its subdomains)"
                    )
        return value

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> Settings:
        if not self.auth and not is_loopback(self.host):
            raise ValueError(
                f"HITL_AUTH=false with HITL_HOST={self.host}: without sign-in, anyone who can "
                "reach the port may approve anything; keep HITL_AUTH on, or bind 127.0.0.1"
            )
        if self.proxy_user_header is not None and not self.trusted_proxies:
            raise ValueError(
                "HITL_PROXY_USER_HEADER needs HITL_TRUSTED_PROXIES: the proxies' addresses"
            )
        return self

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        secure = parts.scheme == "https" or (
            parts.scheme == "http" and is_loopback(parts.hostname or "")
        )
        if not parts.hostname or not secure or parts.query or parts.fragment:
            raise ValueError(
                f"{value!r} is not an issuer URL: give the provider's https URL, as its "
                "/.well-known/openid-configuration names it (http only on a loopback address)"
            )
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _scopes_ask_for_openid(cls, value: str) -> str:
        if "openid" not in value.split():
            raise ValueError(f"{value!r} lacks openid: without it there is no ID token")
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        given = {
            "HITL_OIDC_ISSUER": self.oidc_issuer,
            "HITL_OIDC_CLIENT_ID": self.oidc_client_id,
            "HITL_OIDC_CLIENT_SECRET": self.oidc_client_secret,
        }
        missing = [name for name, value in given.items() if value is None]
        if missing and len(missing) < len(given):
            named = [name for name in given if name not in missing]
            raise ValueError(
                f"{' and '.join(named)} need{'s' if len(named) == 1 else ''} "
                f"{' and '.join(missing)}: OpenID Connect sign-in takes all three"
            )
        return self

    @property
    def oidc(self) -> bool:
        """Whether people may sign in with an OpenID Connect provider."""
        return self.oidc_issuer is not None and self.oidc_client_id is not None

    @field_validator("llm_base_url")
    @classmethod
    def _llm_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(
                f"{value!r} is not a base URL: give the API's http(s) URL up to where "
                "/chat/completions follows, such as http://127.0.0.1:11434/v1"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _llm_key_not_in_the_clear(self) -> Settings:
        url = urlsplit(self.llm_base_url or "")
        clear = url.scheme == "http" and not is_loopback(url.hostname or "")
        if self.llm_api_key is not None and clear:
            raise ValueError(
                f"HITL_LLM_API_KEY would travel in the clear to {self.llm_base_url}: use "
                "https, or a loopback address"
            )
        return self

    @model_validator(mode="after")
    def _deadline_needs_seconds(self) -> Settings:
        if self.on_deadline is not None and self.review_deadline_seconds is None:
            raise ValueError(
                "HITL_ON_DEADLINE needs HITL_REVIEW_DEADLINE_SECONDS: set how long reviews wait"
            )
        return self


def is_loopback(host: str) -> bool:
    """A name or address of this machine's loopback interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Characters that no Host header value holds: the sign of a URL, a list or a quote typed in.
_NOT_IN_HOST = frozenset("/@\\\"', \t")


def _split_hosts(text: str) -> list[str] | None:
    """`HITL_ALLOWED_HOSTS`: a JSON list, or names separated by commas; empty is unset.
    (Not JSON first: `[::1]`, an IPv6 literal, starts as a JSON list does.)"""
    if not text.strip():
        return None
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(value, list):
                return value
    return [name for name in text.split(",") if name.strip()]
