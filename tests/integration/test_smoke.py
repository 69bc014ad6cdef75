"""The node starts, serves a put and a get, and stops cleanly."""

from rumor.v1 import kv_pb2 as pb
from tests.support.nodes import NodeProcess


def test_put_then_get(node: NodeProcess, ns: str) -> None:
    node.kv.Put(pb.PutRequest(namespace_id=ns, key=b"greeting", value=b"hello"))
    got = node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"greeting", type=pb.VALUE_TYPE_TEXT))
    assert got.found
    assert got.text == "hello"
