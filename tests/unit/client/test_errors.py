"""What an error answer becomes in the client: hitl's own, or some other server's."""

from __future__ import annotations

import pickle
import ssl

import httpx

from hitl.client import (
    Answer,
    HitlAPIError,
    HitlConnectionError,
    HitlProtocolError,
    Rejected,
    Task,
    TaskEnded,
    WaitTimeout,
)
from hitl.client._client import _api_error, _reason

URL = "http://hitl.test/api/v1/tasks/0123abcd"
TASK = {
    "id": "t1",
    "flow": "feedback",
    "status": "cancelled",
    "created_at": "2026-12-02T10:00:00Z",
    "updated_at": "2026-12-02T10:01:00Z",
}


def answer(status: int, content_type: str, body: bytes) -> httpx.Response:
    request = httpx.Request("GET", URL + "?x=1")
    return httpx.Response(
        status, headers={"content-type": content_type}, content=body, request=request
    )


def test_a_web_page_is_another_server_s_but_a_gateway_s_is_retried_as_hitl_s() -> None:
    page = b"<!DOCTYPE html><html><title>Error</title><body>" + b"<p>x</p>" * 200 + b"</html>"
    other = _api_error(answer(404, "text/html", page))
    assert isinstance(other, HitlProtocolError), other
    assert other.url == URL  # what answered so: the CLI says which setting names it
    assert str(other) == (
        f"404 Not Found: {URL} answered with a web page, not as a hitl server does: check the "
        "server's address, or the proxy in front of it"
    )
    # A proxy in front of hitl answers 502, 503 or 504 while hitl restarts: the waits retry
    # an HitlAPIError of those (`_follow`), so it stays one, its page named, not shown.
    for status in (502, 503, 504):
        gateway = _api_error(answer(status, "text/html; charset=utf-8", page))
        assert isinstance(gateway, HitlAPIError) and gateway.status_code == status
        assert "answered with a web page" in gateway.detail and "<" not in gateway.detail
        assert gateway.away  # what `hitl watch` waits through
    assert not _api_error(answer(429, "application/json", b'{"detail": "too many"}')).away
    # Markup without its content type is a web page too.
    assert isinstance(
        _api_error(answer(400, "text/plain", b"  <html>no</html>")), HitlProtocolError
    )


def test_hitl_s_own_answers_keep_their_detail() -> None:
    plain = _api_error(answer(500, "text/plain; charset=utf-8", b"Internal Server Error"))
    assert isinstance(plain, HitlAPIError) and plain.detail == "Internal Server Error"
    detail = _api_error(answer(409, "application/json", b'{"detail": "decided already"}'))
    assert isinstance(detail, HitlAPIError) and detail.detail == "decided already"
    long = _api_error(answer(503, "text/plain", b"upstream\nconnect error " + b"x" * 500))
    assert isinstance(long, HitlAPIError)
    assert long.detail == "upstream connect error " + "x" * 177 + "…"


def test_why_a_connection_failed_is_said_alike_by_both_clients() -> None:
    """The sync client's httpx error says "[Errno 111] Connection refused"; the async one's
    says "All connection attempts failed", with the refusal as its cause: both read
    "Connection refused". A TLS failure keeps its own words (its errno is not the system's)."""
    refused = ConnectionRefusedError(111, "Connection refused")
    sync = chained(httpx.ConnectError("[Errno 111] Connection refused"), refused)
    async_ = chained(
        httpx.ConnectError("All connection attempts failed"),
        chained(OSError("All connection attempts failed"), ConnectionRefusedError(111, "x")),
    )
    assert _reason(sync) == _reason(async_) == "Connection refused"
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed")
    tls = chained(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed"), verify)
    assert _reason(tls) == "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed"


def chained(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


def test_an_error_crosses_a_process_boundary_whole() -> None:
    """A process pool or a task queue pickles what a call raised: each error comes back as it
    was, its attributes and message with it (their constructors take more than a message)."""
    request = httpx.Request("GET", URL)
    answer = Answer(task_id="t1", decision="reject", approved=False, comment="no", decided_by="ann")
    errors = [
        HitlAPIError(409, "decided already"),
        HitlConnectionError(
            "no hitl server answers", URL, httpx.ConnectError("x", request=request)
        ),
        HitlProtocolError("not as a hitl server does", URL),
        WaitTimeout("waited 5 s", "t1"),
        Rejected("send_email", answer),
        TaskEnded("task t1 was cancelled", Task.model_validate(TASK)),
    ]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert {k: v for k, v in vars(back).items() if k != "error"} == {
            k: v for k, v in vars(error).items() if k != "error"
        }
    assert pickle.loads(pickle.dumps(errors[0])).away is False
    assert isinstance(pickle.loads(pickle.dumps(errors[3])), TimeoutError)
