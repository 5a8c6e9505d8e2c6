"""Ask a chat model from a flow: any OpenAI-compatible chat completions endpoint, streamed.

`ChatNode` is the PocketFlow node (see `hitl.llm.node` for its shared store); `ChatClient`
the streaming client with retries it uses; `LLMConfig` where the model is (the `HITL_LLM_*`
settings). `examples/llm_review.py` is a flow built on them: draft, review, revise.
"""

from __future__ import annotations

from hitl.llm.client import ChatClient, Completion, Message, Retrying
from hitl.llm.config import LLMConfig
from hitl.llm.errors import LLMError, LLMRefused, LLMUnavailable
from hitl.llm.node import ChatNode, add_usage, chat_messages
from hitl.llm.retry import Backoff, retry_after

__all__ = [
    "Backoff",
    "ChatClient",
    "ChatNode",
    "Completion",
    "LLMConfig",
    "LLMError",
    "LLMRefused",
    "LLMUnavailable",
    "Message",
    "Retrying",
    "add_usage",
    "chat_messages",
    "retry_after",
]
