"""`@require_approval`: a function that runs only once a person approves its arguments.

Each call asks (`ask`) a standalone review whose output is the call's arguments, by name, as
JSON (defaults filled in; a method's `self` or `cls` left out). Approved, the function runs
with its arguments as they were; edited, with the edited ones (each converted to its
parameter's type hint, when it has one: pydantic); rejected, it does not run, and `Rejected`
carries the reviewer's comment.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import ParamSpec, TypeVar, cast

from pydantic import JsonValue, PydanticUserError, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python
from typing_extensions import Unpack

from hitl.client._client import AsyncClient, Client
from hitl.client._exceptions import Rejected
from hitl.client.models import Answer, ReviewOptions

P = ParamSpec("P")
R = TypeVar("R")

HIDDEN = ("self", "cls")  # a method's first parameter: not shown, not editable


def require_approval(
    client: Client | AsyncClient | None = None,
    *,
    timeout: float | None = None,
    **options: Unpack[ReviewOptions],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync, or `async def`) so that each call first waits for a person
    to approve its arguments: see the module. `client` is a `Client` for a sync function, an
    `AsyncClient` for an async one; None: a new one for each call, from HITL_SERVER and
    HITL_TOKEN. `timeout` and `options` (`prompt`, `assignees`, `deadline_seconds`, `form`,
    ...) are `ask`'s; the prompt names the function unless given."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        call = _Call(fn, options)
        if inspect.iscoroutinefunction(fn):
            if isinstance(client, Client):
                raise TypeError(f"{call.name} is async: give require_approval an AsyncClient")
            run = cast(Callable[..., Awaitable[object]], fn)

            @functools.wraps(fn)
            async def approved_async(*args: P.args, **kwargs: P.kwargs) -> object:
                bound = call.bind(args, kwargs)
                async with _async_client(client) as hitl:
                    answer = await hitl.ask(call.output(bound), timeout=timeout, **call.options)
                new_args, new_kwargs = call.decided(bound, answer)
                return await run(*new_args, **new_kwargs)

            return cast(Callable[P, R], approved_async)
        if isinstance(client, AsyncClient):
            raise TypeError(f"{call.name} is not async: give require_approval a Client")

        @functools.wraps(fn)
        def approved(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = call.bind(args, kwargs)
            with _client(client) as hitl:
                answer = hitl.ask(call.output(bound), timeout=timeout, **call.options)
            new_args, new_kwargs = call.decided(bound, answer)
            return cast(Callable[..., R], fn)(*new_args, **new_kwargs)

        return approved

    return decorate


@contextlib.contextmanager
def _client(given: Client | AsyncClient | None) -> Iterator[Client]:
    if isinstance(given, Client):
        yield given
        return
    with Client() as made:
        yield made


@contextlib.asynccontextmanager
async def _async_client(given: Client | AsyncClient | None) -> AsyncIterator[AsyncClient]:
    if isinstance(given, AsyncClient):
        yield given
        return
    async with AsyncClient() as made:
        yield made


class _Call:
    """A decorated function: its signature, its parameters' type hints, and how its calls are
    shown to a reviewer and rebuilt from their edit."""

    def __init__(self, fn: Callable[..., object], options: ReviewOptions) -> None:
        self.name = getattr(fn, "__qualname__", repr(fn))
        self.signature = inspect.signature(fn)
        try:
            self.hints = typing.get_type_hints(fn)
        except Exception:  # a hint that names what cannot be imported here: take JSON as is
            self.hints = {}
        self.options: ReviewOptions = {
            "prompt": f"Allow this call of {self.name}? Approve it to run with these "
            "arguments, edit them to run it with yours, or reject it.",
            **options,
        }

    def bind(self, args: tuple[object, ...], kwargs: dict[str, object]) -> inspect.BoundArguments:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound

    def output(self, bound: inspect.BoundArguments) -> JsonValue:
        """The arguments as the reviewer sees them: by name, as JSON."""
        shown: dict[str, JsonValue] = {}
        for name, value in bound.arguments.items():
            if name in HIDDEN:
                continue
            try:
                shown[name] = to_jsonable_python(value)
            except PydanticSerializationError as exc:
                raise TypeError(
                    f"{self.name}: argument {name!r} ({type(value).__name__}) cannot be shown "
                    f"to a reviewer as JSON ({exc}); the call did not happen"
                ) from None
        return shown

    def decided(
        self, bound: inspect.BoundArguments, answer: Answer
    ) -> tuple[list[object], dict[str, object]]:
        """The arguments to call with: the edit's, if the reviewer edited them; Rejected if
        they rejected the call."""
        if not answer.approved:
            raise Rejected(self.name, answer)
        if answer.decision != "edit":
            return list(bound.args), dict(bound.kwargs)
        edited = answer.edited_output
        if not isinstance(edited, dict):
            raise TypeError(
                f"the reviewer's edit of {self.name}'s arguments is not an object of arguments "
                f"by name ({edited!r}); the call did not happen"
            )
        known = self.signature.parameters
        unknown = sorted(name for name in edited if name not in known or name in HIDDEN)
        if unknown:
            raise TypeError(
                f"the reviewer's edit names arguments {self.name} does not take: {unknown}; "
                "the call did not happen"
            )
        args: list[object] = []
        kwargs: dict[str, object] = {}
        for name, param in self.signature.parameters.items():
            value = self._edited(param, edited[name]) if name in edited else bound.arguments[name]
            if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                args.append(value)
            elif param.kind is param.VAR_POSITIONAL:
                args.extend(cast(list[object], value))
            elif param.kind is param.KEYWORD_ONLY:
                kwargs[name] = value
            else:
                kwargs.update(cast(dict[str, object], value))
        return args, kwargs

    def _edited(self, param: inspect.Parameter, value: JsonValue) -> object:
        """An edited argument, as its parameter's type hint says (a list for *args, an
        object for **kwargs, each item as the hint says); as JSON where there is no hint."""
        hint = self.hints.get(param.name, object)
        shape: object = hint
        if param.kind is param.VAR_POSITIONAL:
            shape = list[hint]  # type: ignore[valid-type]
        elif param.kind is param.VAR_KEYWORD:
            shape = dict[str, hint]  # type: ignore[valid-type]
        try:
            adapter: TypeAdapter[object] = TypeAdapter(cast(type[object], shape))
        except PydanticUserError:  # a hint pydantic cannot check: take the JSON as it is
            return value
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in (param.name, *problem["loc"]))
            raise TypeError(
                f"the reviewer's edit of {self.name}'s arguments does not fit: {where}: "
                f"{problem['msg']}; the call did not happen"
            ) from None
