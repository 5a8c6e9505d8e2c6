"""Where the model is, which one, and how hard to try: from the `HITL_LLM_*` settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from hitl.config import Settings
from hitl.llm.errors import LLMError


@dataclass(frozen=True)
class LLMConfig:
    """`base_url` is the API's, up to where `/chat/completions` follows (as OpenAI's
    clients take it: `http://127.0.0.1:11434/v1`). `api_key` is sent as a bearer token and
    kept out of `repr`, logs and error messages."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 30.0  # the longest wait between attempts (and Retry-After)
    timeout_seconds: float = 60.0  # for the endpoint's next bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig:
        url, model = settings.llm_base_url, settings.llm_model
        if not url or not model:
            named = (("HITL_LLM_BASE_URL", url), ("HITL_LLM_MODEL", model))
            missing = [name for name, value in named if not value]
            raise LLMError(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                "set the model's OpenAI-compatible API (and HITL_LLM_API_KEY if it needs one)"
            )
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(
            base_url=url,
            model=model,
            api_key=key,
            max_retries=settings.llm_max_retries,
            backoff_seconds=settings.llm_backoff_seconds,
            timeout_seconds=settings.llm_timeout_seconds,
        )

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/chat/completions"

    @property
    def where(self) -> str:
        """The endpoint, fit to show: without any user or password in the URL."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def scrub(self, text: str) -> str:
        """`text` (an endpoint's error, say) with the API key blotted out, should it echo it."""
        if self.api_key:
            text = text.replace(self.api_key, "***")
        return text
