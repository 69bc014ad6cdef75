"""The peers benchmark's hand-built wire bytes and its reading of h2load's report.

etcd's requests are checked by parsing them with the protobuf runtime against
descriptors declaring the same fields as etcd's rpc.proto; the gRPC frame by
its five-byte prefix; the h2load parser against reports of the shape h2load
1.52 prints.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given
from hypothesis import strategies as st

from rumor.bench.load_generators import LoadFailed, grpc_frame, parse_h2load
from rumor.bench.peers_servers import etcd_put_request, etcd_range_request

BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
BOOL = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL


def _etcd_messages() -> tuple[Any, Any]:
    """PutRequest and RangeRequest with the fields the benchmark sets, numbered as in
    etcd's rpc.proto (the fields it leaves unset do not change the encoding)."""
    file = descriptor_pb2.FileDescriptorProto(name="etcd_subset.proto", package="etcdserverpb")
    for name, fields in (
        ("PutRequest", (("key", 1, BYTES), ("value", 2, BYTES))),
        ("RangeRequest", (("key", 1, BYTES), ("serializable", 7, BOOL))),
    ):
        message = file.message_type.add(name=name)
        for field_name, number, kind in fields:
            message.field.add(name=field_name, number=number, type=kind, label=1)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("etcdserverpb.PutRequest")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("etcdserverpb.RangeRequest")),
    )


PUT_REQUEST, RANGE_REQUEST = _etcd_messages()


@given(st.binary(min_size=1, max_size=600), st.binary(max_size=70_000))
def test_an_etcd_put_request_parses_to_its_key_and_value(key: bytes, value: bytes) -> None:
    parsed = PUT_REQUEST.FromString(etcd_put_request(key, value))
    assert (parsed.key, parsed.value) == (key, value)
    assert parsed.SerializeToString() == etcd_put_request(key, value)


@given(st.binary(min_size=1, max_size=600), st.booleans())
def test_an_etcd_range_request_parses_to_its_key_and_mode(key: bytes, serializable: bool) -> None:
    encoded = etcd_range_request(key, serializable=serializable)
    parsed = RANGE_REQUEST.FromString(encoded)
    assert (parsed.key, parsed.serializable) == (key, serializable)
    assert parsed.SerializeToString() == encoded


@given(st.binary(max_size=5000))
def test_a_grpc_frame_is_an_uncompressed_flag_and_a_big_endian_length(message: bytes) -> None:
    frame = grpc_frame(message)
    assert frame[0] == 0
    assert struct.unpack(">I", frame[1:5]) == (len(message),)
    assert frame[5:] == message


def _report(done: int, succeeded: int, failed: int = 0, errored: int = 0, timeout: int = 0) -> str:
    return (
        f"finished in 2.00s, 7075.50 req/s, 1.26MB/s\n"
        f"requests: {done} total, {done + 64} started, {done} done, {succeeded} succeeded,"
        f" {failed} failed, {errored} errored, {timeout} timeout\n"
        f"status codes: {succeeded} 2xx, 0 3xx, {failed} 4xx, 0 5xx\n"
    )


def test_a_clean_h2load_report_gives_the_completed_requests_and_their_rate() -> None:
    run = parse_h2load(_report(14151, 14151))
    assert (run.requests, run.requests_per_s) == (14151, 7075.5)


@pytest.mark.parametrize(
    "report",
    [
        _report(100, 90, failed=10),
        _report(100, 100, errored=3),
        _report(100, 100, timeout=1),
        _report(0, 0),
        "starting benchmark...\nno report at all\n",
    ],
)
def test_an_h2load_report_with_any_failure_fails_the_benchmark(report: str) -> None:
    with pytest.raises(LoadFailed):
        parse_h2load(report)
