"""What can go wrong calling a model:

LLMError           the call failed; the message says why and what to check
 ├── LLMRefused     the endpoint refused the request (4xx): retrying would not help
 └── LLMUnavailable no answer after the retries (429, 5xx, connection errors, timeouts)
"""

from __future__ import annotations


class LLMError(Exception):
    """The model could not be asked."""


class LLMRefused(LLMError):
    """The endpoint refused the request."""


class LLMUnavailable(LLMError):
    """The endpoint did not answer after every retry."""


class Retryable(Exception):
    """One attempt failed in a way that another may not: `reason` says how; `retry_after`
    is what the endpoint asked for (seconds), if it did."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
