"""The task page of an LLM task (examples/llm_review.py) in headless Chromium: the draft shows
as the model writes it, then its tokens; a rejection's next draft starts afresh."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server
from tests.e2e.conftest import js_errors
from tests.fake_llm import FakeLLM, Stream, serve_fake_llm

pytestmark = pytest.mark.e2e

FLOW = ["--flow", "examples/llm_review.py:create_llm_review_flow"]
WRITING = Path("/tmp/llm_writing.png")
WRITTEN = Path("/tmp/llm_written.png")
REVISED = Path("/tmp/llm_revised.png")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with serve_fake_llm() as server:
        yield server


def test_the_page_shows_the_draft_as_it_is_written_and_the_tokens_it_took(
    start_server: Callable[..., Server], page: Page, fake: FakeLLM, csp_violations: list[str]
) -> None:
    # The first draft stops after its eighth word until the page has shown it being written.
    first = Stream(hold_after=8)
    fake.then(first, Stream(delay=0.05))
    server = start_server(args=FLOW, llm_base_url=fake.url, llm_model="fake-model")
    response = httpx.post(
        f"{server.url}/api/v1/tasks",
        json={"input": "a note on durable queues", "flow": "llm_review"},
        headers=server.headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    page.goto(f"{server.url}/tasks/{response.json()['id']}")

    draft = page.get_by_test_id("progress-text")
    expect(page.get_by_test_id("progress-state")).to_have_text("writing…")
    message = page.get_by_test_id("progress-message")
    expect(message).to_have_text(re.compile(r"^(asking fake-model|fake-model is writing)$"))
    expect(draft).to_contain_text("Draft 1: a note on durable queues. Queues")
    page.screenshot(path=str(WRITING), full_page=True)
    assert "written down before the next." not in (draft.text_content() or "")  # still writing
    first.release.set()

    expect(page.get_by_test_id("progress-state")).to_have_text("done")
    expect(page.get_by_test_id("review-form")).to_be_visible()
    sent = fake.seen()[0].sent
    expect(draft).to_have_text("".join(sent))
    usage = page.get_by_test_id("progress-usage")
    expect(usage).to_have_text(re.compile(rf"^Tokens: \d+ prompt \+ {len(sent)} completion = \d+$"))
    page.screenshot(path=str(WRITTEN), full_page=True)

    page.get_by_test_id("comment").fill("Mention SQLite by name")
    page.get_by_test_id("reject").click()
    expect(page.locator("#review-round")).to_have_text("2")
    second = "".join(fake.seen()[1].sent)
    expect(draft).to_have_text(second)  # the second draft, not the first one continued
    expect(usage).to_contain_text("this task so far:")
    expect(usage).to_contain_text("over 2 calls")
    page.screenshot(path=str(REVISED), full_page=True)
    assert js_errors(page) == [] and csp_violations == []
