"""The SDK's bounded-staleness helpers, without I/O: the argument, the request, the answer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.client import staleness
from rumor.v1 import kv_pb2


@given(st.integers(min_value=0, max_value=staleness.MAX_STALENESS_MS))
def test_a_bound_the_field_holds_is_sent_as_given(bound: int) -> None:
    request = staleness.stamp(kv_pb2.GetRequest(), bound)
    assert request.HasField("max_staleness_ms") and request.max_staleness_ms == bound


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=staleness.MAX_STALENESS_MS + 1)))
def test_a_bound_out_of_range_is_refused_and_the_request_left_alone(bound: int) -> None:
    request = kv_pb2.ListRequest()
    with pytest.raises(ValueError, match=f"not {bound}"):
        staleness.stamp(request, bound)
    assert not request.HasField("max_staleness_ms")


@pytest.mark.parametrize("bound", [True, 1.0, "10", b"10"])
def test_a_bound_that_is_not_an_int_is_refused(bound: object) -> None:
    with pytest.raises(TypeError, match="max_staleness_ms must be an int"):
        staleness.checked(bound)


def test_no_bound_leaves_the_request_unbounded() -> None:
    assert not staleness.stamp(kv_pb2.BulkGetRequest(), None).HasField("max_staleness_ms")


@given(st.integers(min_value=0, max_value=2**63))
def test_a_reported_bound_reads_back_as_milliseconds(bound: int) -> None:
    assert staleness.lag_bound_of(str(bound)) == bound
    trailers = (("other", "x"), (staleness.LAG_BOUND_KEY, str(bound)))
    assert staleness.lag_bound_in(trailers) == bound


@pytest.mark.parametrize("text", ["unknown", "", "-5", "1.5"])
def test_a_bound_the_node_could_not_give_reads_as_none(text: str) -> None:
    assert staleness.lag_bound_of(text) is None
    assert staleness.lag_bound_in(((staleness.LAG_BOUND_KEY, text),)) is None
    assert staleness.lag_bound_in(None) is None
