"""A unary-unary call served in one coroutine, with the hooks ``rpc`` registers it with.

Every wrapper layer would cost a coroutine per call; here each step a hook does
not need is skipped: ``authorize`` (authenticate, then ``permit`` unless the
authorizer ``permits_at_once``), ``observe`` and the ``CallBudget``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from rumor.node.core.errors import InvalidRequest, RumorError
from rumor.node.server.admission import CallBudget
from rumor.node.server.grpc.call_steps import (
    Authorize,
    Malformed,
    Observe,
    bind,
    code_name,
    fail,
    invocation_metadata,
    report_end,
    sets_own_trailers,
)
from rumor.node.server.release import METADATA


def unary_call(
    name: str,
    implementation: Callable[..., Any],
    authorize: Authorize | None = None,
    observe: Observe | None = None,
    budget: CallBudget | None = None,
) -> Callable[[Any, Any], Any]:
    """A unary-unary call's whole treatment in one coroutine (each wrapper layer costs a
    coroutine per call): authenticate, permit, bind, check the request, take from the
    budget, serve, map errors to statuses, then tell ``ended`` and ``observe``."""
    release_trailers = not sets_own_trailers(implementation)
    # None: the authorizer always looks at the request (``permit``).
    permits_at_once = getattr(authorize, "permits_at_once", None)
    hooked = authorize is not None or observe is not None

    async def call(request: Any, context: Any) -> Any:
        start = time.perf_counter()
        status = "UNKNOWN"
        response = None
        try:
            if authorize is not None:
                if not authorize.authenticate(name, invocation_metadata(context)):
                    await context.abort(
                        grpc.StatusCode.UNAUTHENTICATED,
                        authorize.refusal,
                        trailing_metadata=METADATA,
                    )
                if not isinstance(request, Malformed) and not (
                    permits_at_once is not None and permits_at_once(name)
                ):
                    try:
                        await authorize.permit(name, request)
                    except RumorError as error:
                        await fail(context, error)
            bind(name, context, release_trailers)
            try:
                if isinstance(request, Malformed):
                    raise InvalidRequest(request.reason)
                if budget is None:
                    response = await implementation(request, context)
                else:
                    budget.enter()
                    try:
                        response = await implementation(request, context)
                    finally:
                        budget.leave()
            except Exception as error:
                await fail(context, error)
            if hooked:
                status = code_name(context, "OK")
            return response
        except grpc.aio.AbortError:
            if hooked:
                status = code_name(context, "UNKNOWN")
            raise
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        finally:
            report_end(authorize, observe, name, request, response, status, start)

    return call
