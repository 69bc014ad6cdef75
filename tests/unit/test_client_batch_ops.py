"""A batched call's operation, without I/O: its request, and its call's deadline with it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rumor.client import batch
from rumor.v1 import kv_pb2


def test_an_operation_carries_its_request_and_no_deadline_unless_given() -> None:
    request = kv_pb2.GetRequest(namespace_id="n", key=b"k", after="1")
    op = batch.op(7, "get", request)
    assert (op.id, op.WhichOneof("op"), op.get) == (7, "get", request)
    assert op.timeout_ms == 0


@given(st.floats(min_value=1e-9, max_value=1e15, allow_nan=False))
def test_a_deadline_is_sent_in_whole_milliseconds_never_as_none(timeout: float) -> None:
    sent = batch.op(1, "list", kv_pb2.ListRequest(), timeout).timeout_ms
    assert 1 <= sent <= batch.MAX_TIMEOUT_MS
    assert sent >= min(timeout * 1000, batch.MAX_TIMEOUT_MS)  # never shorter than the call's


@given(st.integers(min_value=0, max_value=100_000))
def test_a_frame_takes_half_the_waiting_calls_within_its_bounds(outstanding: int) -> None:
    limit = batch.frame_limit(outstanding)
    assert batch.MIN_FRAME_OPS <= limit <= batch.MAX_FRAME_OPS
    if outstanding >= 2 * batch.MIN_FRAME_OPS:
        # Two frames in flight at least, until a frame is as large as the node wants.
        assert limit == min(batch.MAX_FRAME_OPS, outstanding // 2)


@given(st.integers(min_value=0, max_value=100_000))
def test_a_frame_of_writes_only_takes_every_waiting_call_within_its_bounds(
    outstanding: int,
) -> None:
    # Its answers wait for the node's WAL sync whichever frame they came in.
    limit = batch.frame_limit(outstanding, writes_only=True)
    assert limit == min(batch.MAX_FRAME_OPS, max(batch.MIN_FRAME_OPS, outstanding))
    assert limit >= batch.frame_limit(outstanding)
