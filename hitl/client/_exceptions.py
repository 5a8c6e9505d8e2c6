"""What the client raises. Each message says what went wrong and what to do; none shows the
token.

    HitlError                 anything about talking to hitl, or what it answered
    ├── HitlAPIError          the server answered with an error status: `status_code`, `detail`
    ├── HitlConnectionError   no answer: nothing listens at the URL, the connection broke, or
    │                         the server took too long (`url`, and httpx's own `error`)
    ├── HitlProtocolError     something answered, but not as a hitl server does
    ├── WaitTimeout           a wait ran out of its `timeout` (also a `TimeoutError`)
    ├── TaskEnded             the task ended without what was waited for (`task`)
    └── Rejected              `@require_approval`: a person rejected the call (`answer`)

    BadServerURL              (a `ValueError`) the URL given for the server is not one
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from hitl.client.models import Answer, Task


class HitlError(Exception):
    """Something went wrong talking to hitl."""

    def __reduce__(self) -> tuple[object, ...]:
        # As it is, attributes and all (a process pool or a task queue pickles what a call
        # raised): the subclasses' own arguments are not their `args` (the message).
        return (_rebuilt, (type(self), self.args, self.__dict__))


def _rebuilt(kind: type[HitlError], args: tuple[object, ...], state: dict[str, object]) -> object:
    error = kind.__new__(kind, *args)
    error.args = args
    error.__dict__.update(state)
    return error


# Answers of a server that cannot serve just now, or of a proxy in front of it that lost it
# (hitl restarting, its database away): the same request may succeed shortly.
AWAY_STATUSES = frozenset({502, 503, 504})


class HitlAPIError(HitlError):
    """The server answered with an error: 401 when it wants a token or refuses the one sent,
    403 when the token may not do that, 404, 409, 422 with the server's reason (`detail`).
    `away` is true for a 502, 503 or 504: the server cannot serve just now (restarting, its
    database away, or a proxy in front of it lost it), and the same request may succeed
    shortly."""

    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{status_code}: {detail}")

    @property
    def away(self) -> bool:
        return self.status_code in AWAY_STATUSES


class HitlConnectionError(HitlError):
    """No answer from the server at `url`: it is down, the address is wrong, the connection
    broke, or it took too long. `error` is httpx's own error (kept off the traceback)."""

    def __init__(self, message: str, url: str, error: httpx.RequestError) -> None:
        self.url = url
        self.error = error
        super().__init__(message)


class HitlProtocolError(HitlError):
    """Something answered at the URL, but not as a hitl server does: check the URL. `url` is
    the address that answered so; None for an answer of hitl's that the call cannot use (the
    result of a task that is not a review)."""

    def __init__(self, message: str, url: str | None = None) -> None:
        self.url = url
        super().__init__(message)


class WaitTimeout(HitlError, TimeoutError):
    """A wait (`ask`, `wait_for_review`, `wait_for_result`) ran out of its `timeout`."""

    def __init__(self, message: str, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(message)


class TaskEnded(HitlError):
    """The task ended without what was waited for: it failed or was cancelled before its
    review was decided (`ask`), or it finished with no review open (`wait_for_review`)."""

    def __init__(self, message: str, task: Task) -> None:
        self.task = task
        super().__init__(message)


class Rejected(HitlError):
    """`@require_approval`: a person rejected the call, which did not happen. `answer` is
    their decision (`comment`, `decided_by`, `form`)."""

    def __init__(self, function: str, answer: Answer) -> None:
        self.function = function
        self.answer = answer
        self.comment = answer.comment
        self.decided_by = answer.decided_by
        who = answer.decided_by or "a reviewer"
        why = f": {answer.comment}" if answer.comment else " (no comment)"
        super().__init__(f"{who} rejected the call of {function}, which did not happen{why}")


class BadServerURL(ValueError):
    """The server's URL is not an http:// or https:// URL with a host."""
