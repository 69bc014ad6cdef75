"""Session reads on real nodes: after a token, a node answers the write or fails clearly.

A 3-node cluster with fault injection: a write on n1, n3 blocked from every
peer. A session read on n3 after the write's token fails UNAVAILABLE, naming
how far behind n3 is, within the call's deadline — it never answers the old
value, which the same plain read on n3 does return (so the test can fail).
Once n3 is unblocked, the session read returns the write. The same through
the REST API's ``Rumor-Session`` header, sent by the Cloudflare Python SDK.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result

from rumor.client import AsyncClient, Client
from rumor.client.errors import UnavailableError
from rumor.client.launcher import main
from rumor.client.session_token import SessionToken
from rumor.v1 import kv_pb2 as pb
from rumor.v1 import kv_pb2_grpc
from tests.integration.kv_helpers import failed_call
from tests.integration.test_replication import SharedCluster, new_namespace
from tests.support.cluster import Cluster, node_id
from tests.support.nodes import NodeProcess, poll

_titles = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCluster]:
    cluster = SharedCluster(tmp_path_factory.mktemp("sessions"), ("--http", "127.0.0.1:0"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(shared: SharedCluster) -> Cluster:
    return shared.healthy()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    return new_namespace(cluster, f"sessions-{next(_titles)}")


def session_get(node: NodeProcess, ns: str, key: bytes, after: str, timeout: float = 5) -> Any:
    return node.kv.Get(
        pb.GetRequest(namespace_id=ns, key=key, type=pb.VALUE_TYPE_TEXT, after=after),
        timeout=timeout,
    )


def batched_get(node: NodeProcess, ns: str, key: bytes, after: str) -> pb.BatchResult:
    frame = pb.BatchRequest()
    frame.ops.add(id=7).get.CopyFrom(
        pb.GetRequest(namespace_id=ns, key=key, type=pb.VALUE_TYPE_TEXT, after=after)
    )
    stub = kv_pb2_grpc.KVStub(node.channel)
    results = [r for response in stub.Batch(iter([frame]), timeout=10) for r in response.results]
    assert [r.id for r in results] == [7]
    result: pb.BatchResult = results[0]
    return result


def test_every_write_answers_its_version_as_a_token(cluster: Cluster, ns: str) -> None:
    n1 = cluster.nodes[0]
    put = n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"v"))
    assert SessionToken.decode(put.session) == SessionToken({node_id(n1): put.seq})
    deleted = n1.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k", after=put.session))
    assert SessionToken.decode(deleted.session) == SessionToken({node_id(n1): deleted.seq})
    bulk = n1.kv.BulkPut(
        pb.BulkPutRequest(namespace_id=ns, items=[pb.PutRequest(key=b"a", value=b"1")])
    )
    assert SessionToken.decode(bulk.session).marks[node_id(n1)] > deleted.seq


def test_a_session_read_on_a_lagging_node_waits_fails_clearly_then_answers(
    cluster: Cluster, ns: str
) -> None:
    n1, n2, n3 = cluster.nodes
    n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"old"))
    poll(lambda: session_get(n3, ns, b"k", "").text == "old")
    cluster.block(n3)
    try:
        written = n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"new"))
        # The same read without a session answers the old value: the lag is real.
        assert session_get(n3, ns, b"k", "").text == "old"
        started = time.monotonic()
        error = failed_call(lambda: session_get(n3, ns, b"k", written.session, timeout=5))
        assert time.monotonic() - started < 5
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        assert f"origin {node_id(n1):016x}" in error.details()
        assert "behind" in error.details()
        # A Batch Get behaves exactly as the unary Get.
        result = batched_get(n3, ns, b"k", written.session)
        assert result.WhichOneof("result") == "error"
        assert result.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
        assert result.error.http_status == 503
        # A node that has the write answers it at once.
        poll(lambda: session_get(n2, ns, b"k", "").text == "new")
        assert session_get(n2, ns, b"k", written.session).text == "new"
    finally:
        cluster.unblock(n3)
    answer = poll_session_read(n3, ns, b"k", written.session)
    assert answer.text == "new"
    assert SessionToken.decode(answer.session).covers(SessionToken.decode(written.session))
    batched = batched_get(n3, ns, b"k", written.session)
    assert batched.get.text == "new"


def poll_session_read(node: NodeProcess, ns: str, key: bytes, after: str) -> Any:
    """The session read, retried while the node still reports UNAVAILABLE (deadline 10 s)."""
    answers: list[Any] = []

    def answered() -> bool:
        try:
            answers.append(session_get(node, ns, key, after))
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            return False
        return True

    poll(answered, timeout=10)
    return answers[-1]


def test_a_session_read_carries_the_tombstone_it_read(cluster: Cluster, ns: str) -> None:
    n1 = cluster.nodes[0]
    n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"gone", value=b"v"))
    deleted = n1.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"gone"))
    answer = session_get(n1, ns, b"gone", "1")
    assert not answer.found
    assert SessionToken.decode(answer.session) == SessionToken({node_id(n1): deleted.seq})


def test_list_and_bulk_get_take_a_token(cluster: Cluster, ns: str) -> None:
    n1 = cluster.nodes[0]
    put = n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"p/a", value=b"v"))
    listed = n1.kv.List(pb.ListRequest(namespace_id=ns, prefix=b"p/", after="1"))
    assert [k.name for k in listed.keys] == [b"p/a"]
    assert SessionToken.decode(listed.session) == SessionToken({node_id(n1): put.seq})
    got = n1.kv.BulkGet(
        pb.BulkGetRequest(
            namespace_id=ns, keys=[b"p/a"], type=pb.VALUE_TYPE_TEXT, after=put.session
        )
    )
    assert got.entries[0].result.text == "v"
    assert got.session == put.session


def test_a_token_that_is_not_one_is_refused(cluster: Cluster, ns: str) -> None:
    error = failed_call(lambda: session_get(cluster.nodes[0], ns, b"k", "2nope"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Invalid session token" in error.details()


ACCOUNT = "acct"


def test_the_session_header_round_trips_through_the_cloudflare_sdk(
    cluster: Cluster, ns: str
) -> None:
    cloudflare = pytest.importorskip("cloudflare", reason="the cloudflare SDK is not installed")
    n1, _, n3 = cluster.nodes

    def kv_on(node: NodeProcess) -> Any:
        client = cloudflare.Cloudflare(
            api_token="t", base_url=f"http://{node.http}/client/v4", max_retries=0
        )
        return client.kv.namespaces

    kv1, kv3 = kv_on(n1), kv_on(n3)
    kv1.values.update("k", account_id=ACCOUNT, namespace_id=ns, value=b"old")
    poll(lambda: session_get(n3, ns, b"k", "").text == "old")
    cluster.block(n3)
    try:
        raw = kv1.values.with_raw_response.update(
            "k", account_id=ACCOUNT, namespace_id=ns, value=b"new"
        )
        token = raw.headers["Rumor-Session"]
        assert SessionToken.decode(token).marks.keys() == {node_id(n1)}
        plain = kv3.values.get("k", account_id=ACCOUNT, namespace_id=ns)
        assert plain.read() == b"old"
        with pytest.raises(cloudflare.APIStatusError) as refused:
            kv3.values.get(
                "k", account_id=ACCOUNT, namespace_id=ns, extra_headers={"Rumor-Session": token}
            )
        assert refused.value.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "1"
        assert "behind" in str(refused.value)
    finally:
        cluster.unblock(n3)
    answers: list[Any] = []

    def answered() -> bool:
        try:
            answers.append(
                kv3.values.get(
                    "k",
                    account_id=ACCOUNT,
                    namespace_id=ns,
                    extra_headers={"Rumor-Session": token},
                )
            )
        except cloudflare.APIStatusError as error:
            assert error.status_code == 503
            return False
        return True

    poll(answered, timeout=10)
    assert answers[-1].read() == b"new"
    returned = SessionToken.decode(answers[-1].headers["Rumor-Session"])
    assert returned.covers(SessionToken.decode(token))


# ---- the SDK --------------------------------------------------------------------


def test_a_token_passed_between_sdk_clients_on_different_nodes(cluster: Cluster, ns: str) -> None:
    n1, _, n3 = cluster.nodes
    with Client(n1.address, timeout=5) as writer, Client(n3.address, timeout=5) as reader:
        reader.namespace(ns).put("k", "old")
        poll(lambda: writer.namespace(ns).get("k") == "old")
        cluster.block(n3)
        try:
            session = writer.session()
            session.namespace(ns).put("k", "new")
            token = session.token
            assert SessionToken.decode(token).marks.keys() == {node_id(n1)}
            assert reader.namespace(ns).get("k") == "old"  # the plain read lags
            with pytest.raises(UnavailableError) as lagging:
                reader.session(token).namespace(ns).get("k")
            assert "behind" in str(lagging.value)
        finally:
            cluster.unblock(n3)
        answers: list[Any] = []

        def read() -> bool:
            try:
                answers.append(reader.session(token).namespace(ns).get("k"))
            except UnavailableError:
                return False
            return True

        poll(read, timeout=10)
        assert answers[-1] == "new"


def test_a_session_fails_over_to_a_node_that_has_its_writes(cluster: Cluster, ns: str) -> None:
    n1, n2, n3 = cluster.nodes
    with Client([n3.address, n2.address], timeout=5) as client:
        client.namespace(ns).put("k", "old")
        poll(lambda: all(session_get(n, ns, b"k", "").text == "old" for n in (n1, n2)))
        cluster.block(n3)
        try:
            written = n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"new"))
            poll(lambda: session_get(n2, ns, b"k", "").text == "new")
            session = client.session(written.session)
            # n3 cannot catch up: the session read goes on to n2, which has the write.
            assert session.namespace(ns).get("k") == "new"
            assert client.endpoints.addresses[client.endpoints.current] == n2.address
        finally:
            cluster.unblock(n3)


def test_session_reads_ride_the_batch_stream_and_fold_every_answer(
    cluster: Cluster, ns: str
) -> None:
    n1, n2, _ = cluster.nodes

    async def scenario() -> tuple[list[Any], str]:
        async with AsyncClient(n1.address, timeout=5) as a, AsyncClient(n2.address) as b:
            session = a.session()
            names = [f"k{i}" for i in range(20)]
            await asyncio.gather(*(session.namespace(ns).put(k, k) for k in names))
            resumed = b.session(session.token)
            values = await asyncio.gather(*(resumed.namespace(ns).get(k) for k in names))
            return values, resumed.token

    values, token = asyncio.run(scenario())
    assert values == [f"k{i}" for i in range(20)]
    marks = SessionToken.decode(token).marks
    assert set(marks) == {node_id(n1)}
    assert marks[node_id(n1)] >= 20


def test_the_cli_takes_a_session_and_prints_the_new_one(cluster: Cluster, ns: str) -> None:
    n1, _, n3 = cluster.nodes
    runner = CliRunner()

    def kv(node: NodeProcess, *args: str) -> Result:
        result = runner.invoke(main, ["kv", "--endpoint", node.address, *args])
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    put = kv(n1, "key", "put", "k", "v", "--namespace-id", ns, "--print-session")
    token = put.stderr.splitlines()[-1]
    assert SessionToken.decode(token).marks.keys() == {node_id(n1)}
    got = kv(n3, "key", "get", "k", "--text", "--namespace-id", ns, "--session", token)
    assert got.stdout == "v\n"
    # Without --print-session, nothing but the command's own output.
    assert token not in got.stderr
    listed = kv(n3, "--session", token, "--print-session", "key", "list", "--namespace-id", ns)
    assert SessionToken.decode(listed.stderr.splitlines()[-1]).covers(SessionToken.decode(token))
    refused = runner.invoke(
        main, ["kv", "--endpoint", n1.address, "key", "get", "k", "--namespace-id", ns,
               "--session", "not-a-token"]
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "session token" in refused.stderr


# ---- bounded staleness ----------------------------------------------------------


def lag_of(node: NodeProcess, ns: str, max_staleness_ms: int | None = None) -> str:
    """A Get on ``node``; the lag bound it reports in its trailers."""
    request = pb.GetRequest(namespace_id=ns, key=b"k", max_staleness_ms=max_staleness_ms)
    _, call = node.kv.Get.with_call(request, timeout=5)
    lag: str = dict(call.trailing_metadata())["rumor-lag-bound-ms"]
    return lag


def test_bounded_staleness_refuses_a_node_cut_off_and_reports_the_bound(
    cluster: Cluster, ns: str
) -> None:
    n1, _, n3 = cluster.nodes
    assert int(lag_of(n3, ns, max_staleness_ms=5000)) < 5000
    cluster.block(n3)
    try:

        def refused() -> bool:
            try:
                lag_of(n3, ns, max_staleness_ms=300)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
                assert "behind the other members" in (error.details() or "")
                return True
            return False

        poll(refused, timeout=10)
        assert int(lag_of(n3, ns)) >= 300  # a plain read still answers, with its bound
        # n1 cannot hear n3 either, which may be taking writes: its bound grows too.
        poll(lambda: int(lag_of(n1, ns)) >= 300, timeout=10)
    finally:
        cluster.unblock(n3)
    poll(lambda: int(lag_of(n3, ns)) < 1000, timeout=10)
    assert int(lag_of(n3, ns, max_staleness_ms=5000)) < 5000


# ---- through a node's workers ---------------------------------------------------


def test_a_session_read_keeps_its_token_through_a_nodes_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Workers forward every KV call to their owner: ``after`` must reach it, and the
    owner's lag bound must come back in the trailers."""
    root = tmp_path_factory.mktemp("sessions-workers")
    cluster = Cluster(root, 0)
    try:
        n1 = cluster.add("n1")
        n2 = cluster.add("n2", "--workers", "2")
        ns = new_namespace(cluster, "sessions-workers")
        n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"old"))
        poll(lambda: session_get(n2, ns, b"k", "").text == "old")
        cluster.block(n2)
        try:
            written = n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"new"))
            assert session_get(n2, ns, b"k", "").text == "old"
            error = failed_call(lambda: session_get(n2, ns, b"k", written.session))
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            assert "behind" in (error.details() or "")
        finally:
            cluster.unblock(n2)
        assert poll_session_read(n2, ns, b"k", written.session).text == "new"
        for _ in range(6):  # a channel of its own: the kernel gives it to any process
            channel = grpc.insecure_channel(
                n2.address, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            try:
                stub = kv_pb2_grpc.KVStub(channel)
                request = pb.GetRequest(namespace_id=ns, key=b"k")
                _, call = stub.Get.with_call(request, timeout=5)
                assert dict(call.trailing_metadata())["rumor-lag-bound-ms"]
                _, call = stub.List.with_call(pb.ListRequest(namespace_id=ns), timeout=5)
                assert dict(call.trailing_metadata())["rumor-lag-bound-ms"]
            finally:
                channel.close()
    finally:
        cluster.stop()


def _http(
    node: NodeProcess, method: str, ns: str, key: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, Any, bytes]:
    """One REST call on a connection of its own (the kernel gives it to any of the
    node's processes): (status, headers, body)."""
    url = f"http://{node.http}/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces/{ns}/values/{key}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_the_session_header_through_a_nodes_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A worker answers the values routes itself: every write still answers the owner's
    version as its token, and a read carrying ``Rumor-Session`` or
    ``Rumor-Max-Staleness-Ms`` is answered by the owner, which waits for the token."""
    root = tmp_path_factory.mktemp("sessions-workers-http")
    cluster = Cluster(root, 0, "--http", "127.0.0.1:0")
    try:
        n1 = cluster.add("n1")
        n2 = cluster.add("n2", "--workers", "2")
        ns = new_namespace(cluster, "sessions-workers-http")
        for i in range(12):  # enough connections that workers answer some
            status, headers, _ = _http(n2, "PUT", ns, f"w{i}", b"v", {})
            assert status == 200
            marks = SessionToken.decode(headers["Rumor-Session"]).marks
            assert marks.keys() == {node_id(n2)} and marks[node_id(n2)] > 0, marks
            status, headers, _ = _http(n2, "DELETE", ns, f"w{i}", None, {})
            assert status == 200
            assert SessionToken.decode(headers["Rumor-Session"]).marks[node_id(n2)] > 0
        n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"old"))
        poll(lambda: session_get(n2, ns, b"k", "").text == "old")
        cluster.block(n2)
        try:
            written = n1.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k", value=b"new"))
            for _ in range(6):
                status, _, body = _http(n2, "GET", ns, "k", None, {})
                assert (status, body) == (200, b"old")
                status, headers, _ = _http(
                    n2, "GET", ns, "k", None, {"Rumor-Session": written.session}
                )
                assert status == 503 and headers["Retry-After"] == "1"
                status, _, _ = _http(n2, "GET", ns, "k", None, {"Rumor-Max-Staleness-Ms": "1"})
                assert status == 503
        finally:
            cluster.unblock(n2)

        def session_read() -> tuple[int, bytes, str]:
            status, headers, body = _http(
                n2, "GET", ns, "k", None, {"Rumor-Session": written.session}
            )
            return status, body, headers.get("Rumor-Session", "")

        poll(lambda: session_read()[0] == 200, timeout=10)
        for _ in range(6):
            status, body, token = session_read()
            assert (status, body) == (200, b"new")
            assert SessionToken.decode(token).covers(SessionToken.decode(written.session))
    finally:
        cluster.stop()
