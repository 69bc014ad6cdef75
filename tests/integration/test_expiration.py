"""Expiring keys: readable until their absolute expiration, then absent everywhere.

The node runs with --min-expiration-ttl 1, so keys can live one or two seconds.
Nothing here sleeps: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import math
import time

from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import early_in_a_second, get, listed, put
from tests.support.nodes import NodeProcess, poll

GONE_WITHIN_S = 5.0


def _gone(node: NodeProcess, ns: str, key: bytes) -> bool:
    return not get(node, ns, key).found


def test_ttl_key_is_readable_then_gone(node: NodeProcess, ns: str) -> None:
    early_in_a_second(node)
    response = put(node, ns, b"brief", b"now you see me", expiration_ttl=1)
    got = get(node, ns, b"brief", pb.VALUE_TYPE_TEXT)
    assert got.found and got.text == "now you see me"
    assert got.expiration == response.expiration
    poll(lambda: _gone(node, ns, b"brief"), timeout=GONE_WITHIN_S)
    # Once expired, it stays expired: the clock has passed its absolute expiration.
    assert time.time() >= response.expiration
    assert not get(node, ns, b"brief", pb.VALUE_TYPE_TEXT, with_metadata=True).found


def test_absolute_expiration_key_is_readable_then_gone(node: NodeProcess, ns: str) -> None:
    early_in_a_second(node)
    expiration = int(time.time()) + 2
    response = put(node, ns, b"dated", b"v", expiration=expiration)
    assert response.expiration == expiration
    got = get(node, ns, b"dated")
    assert got.found and got.expiration == expiration
    poll(lambda: _gone(node, ns, b"dated"), timeout=GONE_WITHIN_S)
    assert time.time() >= expiration


def test_expired_key_is_omitted_from_list_bulk_get_and_get_stream(
    node: NodeProcess, ns: str
) -> None:
    early_in_a_second(node)
    put(node, ns, b"a-lasting", b"stays")
    put(node, ns, b"b-expiring", b"goes", expiration_ttl=1)
    put(node, ns, b"c-lasting", b"stays")
    assert listed(node, ns) == [b"a-lasting", b"b-expiring", b"c-lasting"]
    poll(lambda: listed(node, ns) == [b"a-lasting", b"c-lasting"], timeout=GONE_WITHIN_S)
    response = node.kv.BulkGet(
        pb.BulkGetRequest(
            namespace_id=ns,
            keys=[b"a-lasting", b"b-expiring", b"c-lasting"],
            type=pb.VALUE_TYPE_TEXT,
            with_metadata=True,
        )
    )
    assert [(entry.key, entry.result.found) for entry in response.entries] == [
        (b"a-lasting", True),
        (b"b-expiring", False),
        (b"c-lasting", True),
    ]
    assert response.entries[1].result.WhichOneof("payload") is None
    [stream_header] = node.kv.GetStream(pb.GetRequest(namespace_id=ns, key=b"b-expiring"))
    assert not stream_header.header.found


def test_ttl_wins_over_absolute_expiration(node: NodeProcess, ns: str) -> None:
    far = int(time.time()) + 86_400
    before = time.time()
    response = put(node, ns, b"both", expiration=far, expiration_ttl=600)
    after = time.time()
    assert before + 600 - 1 <= response.expiration <= after + 600 + 1
    assert get(node, ns, b"both").expiration == response.expiration


def test_ttl_wins_even_when_absolute_expiration_is_invalid(node: NodeProcess, ns: str) -> None:
    """The absolute value is ignored when a TTL is given, so it is not validated either."""
    response = put(node, ns, b"both", expiration=1, expiration_ttl=600)
    assert abs(response.expiration - (time.time() + 600)) <= 2


def test_put_response_expiration_is_absolute(node: NodeProcess, ns: str) -> None:
    before = time.time()
    response = put(node, ns, b"hour", expiration_ttl=3600, metadata=b'{"m":1}')
    after = time.time()
    assert before + 3600 - 1 <= response.expiration <= after + 3600 + 1
    assert get(node, ns, b"hour").expiration == response.expiration
    [info] = node.kv.List(pb.ListRequest(namespace_id=ns)).keys
    assert info.HasField("expiration") and info.expiration == response.expiration
    assert info.metadata == b'{"m":1}'
    assert put(node, ns, b"forever").expiration == 0
    assert get(node, ns, b"forever").expiration == 0


def test_ttl_counts_from_the_current_whole_second(node: NodeProcess, ns: str) -> None:
    """expiration_ttl gives floor(now) + ttl, as Miniflare and Workers KV count it:
    the key never lives longer than its TTL (it may live up to a second less)."""
    for ttl in (1, 60, 3600):
        before = math.floor(time.time())
        response = put(node, ns, b"ttl-%d" % ttl, expiration_ttl=ttl)
        after = math.floor(time.time())
        assert before + ttl <= response.expiration <= after + ttl, (
            f"expiration_ttl={ttl} given in second {before} expires at {response.expiration}"
        )


def test_rewriting_without_expiration_makes_a_key_permanent(node: NodeProcess, ns: str) -> None:
    early_in_a_second(node)
    put(node, ns, b"k", b"expiring", expiration_ttl=1)
    put(node, ns, b"k", b"permanent")
    put(node, ns, b"marker", b"m", expiration_ttl=1)
    poll(lambda: _gone(node, ns, b"marker"), timeout=GONE_WITHIN_S)
    got = get(node, ns, b"k")
    assert got.found and got.value == b"permanent" and got.expiration == 0


def test_deleting_an_expiring_key_removes_it_at_once(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"k", expiration_ttl=3600)
    node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k"))
    assert not get(node, ns, b"k").found
    assert listed(node, ns) == []
