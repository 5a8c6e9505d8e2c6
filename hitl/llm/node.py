"""`ChatNode`: a PocketFlow node that asks a chat model, streaming its answer as progress.

Its shared store:

- reads `task_input` (the request: text, or JSON, shown as JSON) and `feedback`, a list of
  `{"draft", "comment"}`: each rejected draft with the reviewer's comment on it, oldest first.
  They follow the request in the prompt, so the next draft answers them;
- writes `draft` (or `output_key`): the model's answer; and `llm_usage`: the tokens of every
  call so far (`prompt_tokens`, `completion_tokens`, `total_tokens`, and `calls`).

It reports (`hitl.flow.progress`): a message as it asks the model, and as the answer begins;
every piece of text as a `delta`; on a retry, a message saying why and `reset` (the text
starts over); at the end, `usage` (this call's, as the endpoint said it) and `usage_total`
(`llm_usage`).

Without a config it reads the `HITL_LLM_*` settings from the environment when it runs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pocketflow import AsyncNode

from hitl.config import Settings
from hitl.flow import Reporting
from hitl.llm.client import ChatClient, Completion, Message, Retrying
from hitl.llm.config import LLMConfig

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


class ChatNode(Reporting, AsyncNode):  # type: ignore[misc]
    system_prompt = (
        "You are a careful writer. Write what the user asks for, and reply with that text only."
    )
    output_key = "draft"

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        random: Callable[[], float] | None = None,
        **options: Any,
    ) -> None:
        """`options` go into every request's body (`temperature=0.2`); `sleep` and `random`
        are the retries' clock and dice (tests pass their own)."""
        super().__init__()
        self.config = config
        self.options = options
        self.clock: dict[str, Any] = {}
        if sleep is not None:
            self.clock["sleep"] = sleep
        if random is not None:
            self.clock["random"] = random

    def messages(self, shared: dict[str, Any]) -> list[Message]:
        """The prompt; override to write your own."""
        feedback = shared.get("feedback") or []
        return chat_messages(self.system_prompt, shared.get("task_input"), feedback)

    async def prep_async(self, shared: dict[str, Any]) -> list[Message]:
        return self.messages(shared)

    async def exec_async(self, prep_res: list[Message]) -> Completion:
        config = self.config or LLMConfig.from_settings(Settings())
        client = ChatClient(config, **self.clock)
        self.progress(f"asking {config.model}", reset=True)
        answering = False

        def delta(text: str) -> None:
            nonlocal answering
            if answering:
                self.progress(delta=text)
            else:  # the first piece of an answer
                answering = True
                self.progress(f"{config.model} is writing", delta=text)

        def retrying(retry: Retrying) -> None:
            nonlocal answering
            answering = False
            self._retrying(retry)

        return await client.complete(prep_res, on_delta=delta, on_retry=retrying, **self.options)

    def _retrying(self, retry: Retrying) -> None:
        self.progress(
            f"{retry.reason}; retry {retry.retry} of {retry.of} in {retry.wait:.1f} s",
            reset=True,
            retry=retry.retry,
        )

    async def post_async(
        self, shared: dict[str, Any], prep_res: list[Message], exec_res: Completion
    ) -> str:
        shared[self.output_key] = exec_res.text
        total = add_usage(shared.get("llm_usage"), exec_res.usage)
        shared["llm_usage"] = total
        tokens = (exec_res.usage or {}).get("total_tokens")
        said = f"{tokens} tokens" if tokens is not None else "the endpoint reported no usage"
        self.progress(f"done: {said}", usage=exec_res.usage, usage_total=total)
        return "default"


def chat_messages(system: str, request: Any, feedback: list[Any]) -> list[Message]:
    """A system prompt, the request, then each rejected draft and the comment on it."""
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": _text(request)},
    ]
    for item in feedback:
        item = item if isinstance(item, dict) else {"comment": item}
        comment = str(item.get("comment") or "").strip() or "(no comment)"
        messages.append({"role": "assistant", "content": _text(item.get("draft"))})
        messages.append(
            {
                "role": "user",
                "content": f"A reviewer rejected that draft. Their comment: {comment}\n\n"
                "Write a revised draft that addresses it. Reply with the draft only.",
            }
        )
    return messages


def add_usage(total: Any, usage: dict[str, Any] | None) -> dict[str, int]:
    """`total` (the calls so far) with one more call's `usage` added."""
    was = total if isinstance(total, dict) else {}
    now = {key: int(was.get(key) or 0) for key in (*USAGE_KEYS, "calls")}
    now["calls"] += 1
    for key in USAGE_KEYS:
        value = (usage or {}).get(key)
        if isinstance(value, int):
            now[key] += value
    return now


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2)
