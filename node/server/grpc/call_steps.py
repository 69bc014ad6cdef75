"""What every gRPC call shape shares: decoding, failing, binding, the hooks' protocols.

``rpc`` registers a servicer's methods and ``unary_call`` serves the unary ones
with these steps; the servicers import ``Context`` and ``own_trailers`` from here
(through ``rpc``).
"""

from __future__ import annotations

import contextvars
import random
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import grpc
import grpc.aio
import structlog
from google.protobuf.message import DecodeError, Message

from rumor.node.core.errors import RumorError
from rumor.node.server.errors import status_of
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.release import METADATA

log = structlog.get_logger(__name__)
_throttled = LogThrottle(log)

HTTP_STATUS_HEADER = "rumor-http-status"

# A call's context as grpc.aio hands it to a servicer.
Context = grpc.aio.ServicerContext[Any, Any]
Observe = Callable[[str, str, str, float], None]

# StatusCode names by the enum and by its integer value (what aio contexts may return).
_CODE_NAMES: dict[object, str] = {}
for _code in grpc.StatusCode:
    _CODE_NAMES[_code] = _code.name
    _CODE_NAMES[_code.value[0]] = _code.name


class Authorizer(Protocol):
    """Who may call a service's methods (``access`` and ``security`` implement it).

    An authorizer may also have ``permits_at_once(method) -> bool``: True when the
    caller may make any ``method`` call, known without the request or a wait (a
    unary call then skips ``permit``); False: ask ``permit``.
    """

    @property
    def refusal(self) -> str:
        """What a call whose credentials are refused is told: the credential it lacks."""
        ...

    def authenticate(self, method: str, metadata: Any) -> bool:
        """Whether the call's credentials are known; may remember the caller for ``permit``."""
        ...

    async def permit(self, method: str, request: Any) -> None:
        """Raise a ``RumorError`` (``PermissionDenied``) when the caller may not make this call."""
        ...

    def ended(self, method: str, request: Any, response: Any, status: str) -> None:
        """The call ended with ``status`` (a StatusCode name); ``request`` and
        ``response`` are None for a streamed request or answer."""
        ...


Authorize = Authorizer


class Malformed:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def deserializer(message_class: type[Message]) -> Callable[[bytes], Any]:
    from_string = message_class.FromString

    def deserialize(data: bytes) -> Any:
        try:
            return from_string(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            return Malformed(f"malformed {message_class.__name__}: {exc}")

    return deserialize


def serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def fail(context: grpc.aio.ServicerContext[Any, Any], error: BaseException) -> None:
    if isinstance(error, grpc.aio.AbortError):
        raise error
    # The abort below keeps ``error`` (as its context), and with it every frame it passed
    # through: let go of their locals (a stream's received bytes) now, not at the
    # collector's next full pass, which on an idle node may be minutes away.
    if isinstance(error, RumorError):
        traceback.clear_frames(error.__traceback__)
        status = status_of(error)
        # The HTTP status travels too, so the SDK can word its errors as workerd
        # does (``KV PUT failed: 413 ...``) without guessing from the gRPC code.
        await context.abort(
            status.grpc_code,
            str(error),
            trailing_metadata=((HTTP_STATUS_HEADER, str(status.http_status)), *METADATA),
        )
    _throttled.error("rpc.internal_error", type(error).__name__, error=repr(error), exc_info=error)
    traceback.clear_frames(error.__traceback__)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error: {error!r}", trailing_metadata=METADATA
    )


def bind(name: str, context: Any, release_trailers: bool = True) -> None:
    if release_trailers:
        context.set_trailing_metadata(METADATA)
    # 12 hex digits: the id only tells one call's log lines from another's, so the
    # Mersenne Twister does (os.urandom is a system call on every request).
    structlog.contextvars.bind_contextvars(rpc=name, request_id=f"{random.getrandbits(48):012x}")


# The invocation metadata grpc.aio handed the method lookup (``remember_metadata``), in
# the call's own task: asking the context again would build the same tuple again.
_LOOKED_UP_METADATA: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "looked_up_metadata", default=None
)


def remember_metadata(metadata: Any) -> None:
    """Keep the metadata a method lookup was given for the call it looked up."""
    _LOOKED_UP_METADATA.set(metadata)


def invocation_metadata(context: Any) -> Any:
    """The call's invocation metadata: what its lookup was given, else the context's."""
    metadata = _LOOKED_UP_METADATA.get()
    return context.invocation_metadata() if metadata is None else metadata


_OWN_TRAILERS = "_rumor_sets_own_trailers"
_Method = TypeVar("_Method", bound=Callable[..., Any])


def own_trailers(method: _Method) -> _Method:
    """Marks a servicer method that sets the call's trailing metadata itself, the release
    (``METADATA``) included, before any answer it gives: the call does not set them first."""
    setattr(method, _OWN_TRAILERS, True)
    return method


def sets_own_trailers(implementation: Callable[..., Any]) -> bool:
    """Whether ``implementation`` (a function or a bound method) is marked ``own_trailers``."""
    return bool(getattr(implementation, _OWN_TRAILERS, False))


def report_end(
    authorize: Authorize | None,
    observe: Observe | None,
    name: str,
    request: Any,
    response: Any,
    status: str,
    start: float,
) -> None:
    """Tell the hooks how a call ended: ``authorize.ended`` (the audit trail), then
    ``observe`` with the time since ``start`` (``time.perf_counter()``)."""
    if authorize is not None:
        authorize.ended(name, request, response, status)
    if observe is not None:
        observe("grpc", name, status, time.perf_counter() - start)


def code_name(context: Any, default: str) -> str:
    """The status a call ended with as a StatusCode name (``default`` when unset)."""
    try:
        code = context.code()
    except (AttributeError, NotImplementedError):
        return default
    if code is None:
        return default
    return _CODE_NAMES.get(code, default)
