"""Sessions and bounded staleness beyond the unary gRPC calls: the SDK, Batch, the binding.

A 3-node cluster with fault injection. ``max_staleness_ms`` on the SDK's reads
(sync and asyncio, unary and on the Batch stream) is answered by a node in
touch with the others and refused — ``UnavailableError`` naming the bound — by
a node cut off from them, while the same plain read still answers; every
read's lag bound is readable on the namespace object (``lag_bound_ms``). A
BulkGet and a List riding a Batch stream with a token the node cannot cover
fail exactly as their unary calls do, then answer once it can, with the lag
bound in their results. The Workers binding protocol takes ``Rumor-Session``
as the REST API does: a read after a write it cannot see yet answers 503 with
Retry-After (the same read without the header answers the old value), then
the write; every answer carries the token back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from rumor.client import AsyncClient, Client
from rumor.client.errors import UnavailableError
from rumor.client.session_token import SessionToken
from rumor.v1 import kv_pb2 as pb
from rumor.v1 import kv_pb2_grpc
from tests.integration.kv_helpers import failed_call
from tests.integration.test_replication import SharedCluster, new_namespace
from tests.support.cluster import Cluster, node_id
from tests.support.nodes import NodeProcess, poll

_titles = itertools.count()
_op_ids = itertools.count(1)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCluster]:
    cluster = SharedCluster(tmp_path_factory.mktemp("surfaces"), ("--http", "127.0.0.1:0"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(shared: SharedCluster) -> Cluster:
    return shared.healthy()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    return new_namespace(cluster, f"staleness-{next(_titles)}")


def test_sdk_reads_take_max_staleness_and_report_the_lag_bound(cluster: Cluster, ns: str) -> None:
    n1, _, n3 = cluster.nodes
    with Client(n1.address) as writer:
        writer.namespace(ns).put("k", "v")
        writer.namespace(ns).put("p/a", "v")
    with Client(n3.address) as reader:
        poll(lambda: reader.namespace(ns).get("k") == "v", timeout=10)
    for batching in (True, False):
        with Client(n3.address, batching=batching, timeout=5) as kv:
            keys = kv.namespace(ns)
            assert keys.lag_bound_ms is None  # no read yet
            assert keys.get("k", max_staleness_ms=5000) == "v"
            assert keys.lag_bound_ms is not None and keys.lag_bound_ms < 5000
            found = keys.get_with_metadata(["k"], max_staleness_ms=5000)
            assert found["k"].value == "v"
            assert [k.name for k in keys.list(prefix="p/", max_staleness_ms=5000).keys] == ["p/a"]
            assert [k.name for k in keys.iter_keys("p/", max_staleness_ms=5000)] == ["p/a"]
            assert keys.lag_bound_ms is not None and keys.lag_bound_ms < 5000

    cluster.block(n3)
    try:
        with Client(n3.address, timeout=5) as kv:
            keys = kv.namespace(ns)

            def refused() -> bool:
                try:
                    keys.get("k", max_staleness_ms=300)
                except UnavailableError as error:
                    assert "behind the other members" in str(error)
                    assert "max_staleness_ms=300" in str(error)
                    return True
                return False

            poll(refused, timeout=15)
            # The same read without a bound answers, and says how far behind it may be.
            assert keys.get("k") == "v"
            assert keys.lag_bound_ms is not None and keys.lag_bound_ms >= 300
            with pytest.raises(UnavailableError):
                keys.list(max_staleness_ms=300)
    finally:
        cluster.unblock(n3)


def test_async_reads_take_max_staleness_on_the_batch_stream(cluster: Cluster, ns: str) -> None:
    n1, n2, _ = cluster.nodes
    with Client(n1.address) as writer:
        for i in range(5):
            writer.namespace(ns).put(f"k{i}", str(i))
    with Client(n2.address) as reader:
        poll(lambda: reader.namespace(ns).get("k4") == "4", timeout=10)

    async def scenario() -> tuple[list[Any], list[int | None], int | None]:
        async with AsyncClient(n2.address, timeout=5) as kv:
            spaces = [kv.namespace(ns) for _ in range(5)]
            # Concurrent calls ride one Batch stream: each result carries the bound.
            values = await asyncio.gather(
                *(space.get(f"k{i}", max_staleness_ms=5000) for i, space in enumerate(spaces))
            )
            bounds = [space.lag_bound_ms for space in spaces]
            one = kv.namespace(ns)
            await one.get("k0")
            return values, bounds, one.lag_bound_ms

    values, bounds, plain = asyncio.run(scenario())
    assert values == ["0", "1", "2", "3", "4"]
    assert all(bound is not None and bound < 5000 for bound in bounds)
    assert plain is not None


def test_bad_max_staleness_is_refused_before_anything_is_sent(cluster: Cluster, ns: str) -> None:
    with Client(cluster.nodes[0].address) as kv:
        keys = kv.namespace(ns)
        with pytest.raises(ValueError, match="between 0 and 4294967295, not -1"):
            keys.get("k", max_staleness_ms=-1)
        with pytest.raises(TypeError, match="must be an int, not str"):
            keys.list(max_staleness_ms="5")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must be an int, not float"):
            keys.get(["k"], max_staleness_ms=1.5)  # type: ignore[arg-type]
        assert keys.lag_bound_ms is None  # nothing was read


# ---- batched session reads --------------------------------------------------------


def batch_op(node: NodeProcess, **op: Any) -> pb.BatchResult:
    """One operation on a Batch stream of its own: its result."""
    frame = pb.BatchRequest()
    frame.ops.add(id=next(_op_ids), **op)
    stub = kv_pb2_grpc.KVStub(node.channel)
    results = [r for response in stub.Batch(iter([frame]), timeout=10) for r in response.results]
    assert len(results) == 1
    result: pb.BatchResult = results[0]
    return result


def test_batched_bulk_get_and_list_wait_for_the_token_as_the_unary_calls_do(
    cluster: Cluster, ns: str
) -> None:
    n1, _, n3 = cluster.nodes
    n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"p/k", value=b"old"))
    cluster.wait_converged(timeout=10)
    cluster.block(n3)
    try:
        written = n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"p/k", value=b"new"))
        bulk = pb.BulkGetRequest(
            namespace_id=ns, keys=[b"p/k"], type=pb.VALUE_TYPE_TEXT, after=written.session
        )
        listing = pb.ListRequest(namespace_id=ns, prefix=b"p/", after=written.session)
        for field, request, unary in (
            ("bulk_get", bulk, n3.kv.BulkGet),
            ("list", listing, n3.kv.List),
        ):
            error = failed_call(lambda: unary(request, timeout=5))  # noqa: B023
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            result = batch_op(n3, **{field: request})
            assert result.WhichOneof("result") == "error"
            assert result.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
            assert result.error.http_status == 503
            assert "behind" in result.error.message
    finally:
        cluster.unblock(n3)

    def answered() -> bool:
        kind: str | None = batch_op(n3, bulk_get=bulk).WhichOneof("result")
        return kind == "bulk_get"

    poll(answered, timeout=15)
    result = batch_op(n3, bulk_get=bulk)
    assert result.bulk_get.entries[0].result.text == "new"
    assert result.bulk_get.session == n3.kv.BulkGet(bulk, timeout=5).session
    assert result.lag_bound_ms.isdigit()
    listed = batch_op(n3, list=listing)
    assert [k.name for k in listed.list.keys] == [b"p/k"]
    assert listed.list.session == n3.kv.List(listing, timeout=5).session
    assert listed.lag_bound_ms.isdigit()


def test_a_batched_session_read_keeps_its_own_deadline_as_the_unary_call_does(
    cluster: Cluster, ns: str
) -> None:
    """The node waits for a token at most until the call's deadline (less a margin), then
    says UNAVAILABLE, so the client fails over: on the Batch stream too, where the call's
    deadline travels in the operation (``timeout_ms``), not in the stream's. Without it the
    node waited its full second, past the client's deadline."""
    n1, _, n3 = cluster.nodes
    n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"old"))
    cluster.wait_converged(timeout=10)
    cluster.block(n3)
    try:
        written = n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"new"))
        request = pb.GetRequest(namespace_id=ns, key=b"k", after=written.session)
        started = time.monotonic()
        result = batch_op(n3, get=request, timeout_ms=400)
        assert time.monotonic() - started < 0.95  # the session wait bound is 1 s
        assert result.error.code == grpc.StatusCode.UNAVAILABLE.value[0], result
        assert "behind" in result.error.message
        unary = failed_call(lambda: n3.kv.Get(request, timeout=0.4))
        assert unary.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        cluster.unblock(n3)


# ---- the Workers binding protocol ---------------------------------------------------


def binding(
    node: NodeProcess,
    ns: str,
    method: str,
    path: str,
    body: bytes | None = None,
    session: str | None = None,
) -> tuple[int, str, dict[str, str], bytes]:
    """A binding request as workerd sends it (plus ``Rumor-Session``): status, reason,
    headers, body."""
    headers = {"Rumor-Namespace": ns}
    if session is not None:
        headers["Rumor-Session"] = session
    url = f"http://{node.http}{path}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.reason, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.reason, dict(error.headers), error.read()


def test_the_binding_takes_a_session_and_never_answers_older_data(
    cluster: Cluster, ns: str
) -> None:
    n1, _, n3 = cluster.nodes
    status, _, headers, _ = binding(n1, ns, "PUT", "/k?urlencoded=true", b"old")
    assert status == 200
    assert SessionToken.decode(headers["Rumor-Session"]).marks.keys() == {node_id(n1)}
    cluster.wait_converged(timeout=10)
    cluster.block(n3)
    try:
        status, _, headers, _ = binding(n1, ns, "PUT", "/k?urlencoded=true", b"new")
        token = headers["Rumor-Session"]
        # The same read without the header answers the old value: the lag is real.
        assert binding(n3, ns, "GET", "/k?urlencoded=true")[3] == b"old"
        status, reason, headers, _ = binding(n3, ns, "GET", "/k?urlencoded=true", session=token)
        assert status == 503
        assert headers["Retry-After"] == "1"
        assert "behind" in reason  # workerd shows the reason phrase
        for method, path, body in (("GET", "/?prefix=k", None), ("POST", "/bulk/get", b"{}")):
            assert binding(n3, ns, method, path, body, session=token)[0] == 503
    finally:
        cluster.unblock(n3)
    answers: list[tuple[int, str, dict[str, str], bytes]] = []

    def answered() -> bool:
        answers.append(binding(n3, ns, "GET", "/k?urlencoded=true", session=token))
        assert answers[-1][0] in (200, 503), answers[-1]
        return answers[-1][0] == 200

    poll(answered, timeout=15)
    _, _, headers, body = answers[-1]
    assert body == b"new"
    assert SessionToken.decode(headers["Rumor-Session"]).covers(SessionToken.decode(token))
    assert headers["Rumor-Lag-Bound-Ms"].isdigit()


def test_every_binding_route_answers_the_session_it_was_given(cluster: Cluster, ns: str) -> None:
    n1 = cluster.nodes[0]
    put = binding(n1, ns, "PUT", "/p%2Fa?urlencoded=true", b"v")
    written = SessionToken.decode(put[2]["Rumor-Session"])
    listed = binding(n1, ns, "GET", "/?prefix=p%2F", session="1")
    assert [k["name"] for k in json.loads(listed[3])["keys"]] == ["p/a"]
    assert SessionToken.decode(listed[2]["Rumor-Session"]) == written
    body = json.dumps({"keys": ["p/a", "none"]}).encode()
    got = binding(n1, ns, "POST", "/bulk/get", body, session=put[2]["Rumor-Session"])
    assert json.loads(got[3]) == {"p/a": "v", "none": None}
    assert SessionToken.decode(got[2]["Rumor-Session"]) == written
    deleted = binding(n1, ns, "DELETE", "/p%2Fa?urlencoded=true", session="1")
    gone = SessionToken.decode(deleted[2]["Rumor-Session"])
    assert gone.covers(written) and gone != written
    # Reading the delete is reading a write: a missing key's answer names the tombstone.
    missing = binding(n1, ns, "GET", "/p%2Fa?urlencoded=true", session="1")
    assert missing[0] == 404
    assert SessionToken.decode(missing[2]["Rumor-Session"]) == gone
    assert binding(n1, ns, "GET", "/k?urlencoded=true", session="2nope")[0] == 400
