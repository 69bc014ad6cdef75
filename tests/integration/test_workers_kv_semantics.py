"""Where Workers KV's answers are easy to get subtly wrong, each answered as it answers.

The reference is what Cloudflare's own runtime and simulator do: workerd's
``kv.c++`` (the binding: a get type it does not know and a put value it does
not take are TypeErrors; its 32-bit ``int`` options turn NaN into 0, cut a
fraction toward zero and refuse a value beyond 32 bits with "Value out of
range"; a list limit of 0 or less is dropped) and Miniflare's KV validator and
namespace worker (a bulk get type error ends at ``Use "json" or "text"``;
query numbers are read with ``parseInt``; a key that does not URL-decode is
"Could not URL-decode key name"). Cloudflare's API and SDK models give a bulk
get's entries with metadata their ``expiration``.

Each behaviour is checked through every client that can meet it: the Python
SDK, the REST API (raw and through the official Cloudflare SDK) and the
Workers binding protocol.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import cloudflare
import pytest

from rumor.client import Client
from rumor.client.errors import InvalidRequestError
from tests.support.nodes import NodeProcess

ACCOUNT = "0" * 32


@pytest.fixture(scope="module")
def http_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("semantics")
    node = NodeProcess(root / "data", "--http", "127.0.0.1:0", "--min-expiration-ttl", "60")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def kv(http_node: NodeProcess, request: pytest.FixtureRequest) -> Iterator[Any]:
    with Client(http_node.address, timeout=10) as client:
        namespace = client.namespaces.create(f"semantics-{request.node.name}"[:500])
        yield client.namespace(namespace.id)


def _http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.reason, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.reason, error.read()


def _rest(node: NodeProcess, namespace_id: str) -> str:
    return f"http://{node.http}/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces/{namespace_id}"


def _error(body: bytes) -> str:
    return str(json.loads(body)["errors"][0]["message"])


BINDING = "http://{http}{path}"


def _binding(node: NodeProcess, namespace_id: str) -> dict[str, str]:
    return {"Rumor-Namespace": namespace_id, "Content-Type": "application/json"}


# ---- a bulk get's type ---------------------------------------------------------------

BAD_TYPE = '"arrayBuffer" is not a valid type. Use "json" or "text"'


def test_a_bulk_get_type_error_ends_as_miniflares(http_node: NodeProcess, kv: Any) -> None:
    kv.put("k", "v")
    with pytest.raises(InvalidRequestError) as caught:
        kv.get(["k"], type="arrayBuffer")
    assert caught.value.message == BAD_TYPE
    assert str(caught.value) == f"KV GET_BULK failed: 400 {BAD_TYPE}"

    body = json.dumps({"keys": ["k"], "type": "arrayBuffer"}).encode()
    json_type = {"Content-Type": "application/json"}
    status, _, answer = _http(f"{_rest(http_node, kv.id)}/bulk/get", "POST", body, json_type)
    assert (status, _error(answer)) == (400, BAD_TYPE)

    binding = BINDING.format(http=http_node.http, path="/bulk/get")
    status, reason, _ = _http(binding, "POST", body, _binding(http_node, kv.id))
    assert (status, reason) == (400, BAD_TYPE)


# ---- types the runtime refuses: TypeError --------------------------------------------


def test_an_unknown_get_type_is_a_type_error(kv: Any) -> None:
    kv.put("k", "v")
    with pytest.raises(TypeError, match=r'^Unknown response type\. Possible types are "text"'):
        kv.get("k", type="blob")
    with pytest.raises(TypeError, match="Unknown response type"):
        kv.get_with_metadata("k", type="blob")


@pytest.mark.parametrize("value", [{"a": 1}, 5, None, 1.5])
def test_putting_a_value_of_another_type_is_a_type_error(kv: Any, value: object) -> None:
    with pytest.raises(TypeError) as caught:
        kv.put("k", value)
    assert str(caught.value).startswith(
        "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams"
        " as values"
    )
    assert not isinstance(caught.value, ValueError)
    assert kv.get("k") is None  # nothing written


# ---- the runtime's 32-bit integers ----------------------------------------------------


def test_a_nan_ttl_is_zero(kv: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        kv.put("k", "v", expiration_ttl=math.nan)
    assert (
        caught.value.message
        == "Invalid expiration_ttl of 0. Please specify integer greater than 0."
    )
    assert kv.get("k") is None


@pytest.mark.parametrize("option", ["expiration", "expiration_ttl"])
@pytest.mark.parametrize("number", [2**31, 2.0**40, -(2**31) - 1])
def test_a_number_beyond_32_bits_is_out_of_range(kv: Any, option: str, number: float) -> None:
    with pytest.raises(TypeError) as caught:
        kv.put("k", "v", **{option: number})
    assert str(caught.value) == (
        "Value out of range. Must be between -2147483648 and 2147483647 (inclusive)."
    )


def test_a_fraction_is_cut_toward_zero(kv: Any) -> None:
    written = kv.put("ttl", "v", expiration_ttl=61.9)
    now = int(time.time())
    assert now + 60 <= written.expiration <= now + 61  # 61, counted from the node's second
    dated = kv.put("dated", "v", expiration=2_000_000_000.99)
    assert dated.expiration == 2_000_000_000
    with pytest.raises(InvalidRequestError) as caught:
        kv.put("k", "v", expiration_ttl=0.5)  # 0
    assert (
        caught.value.message
        == "Invalid expiration_ttl of 0. Please specify integer greater than 0."
    )


@pytest.mark.parametrize("limit", [0, -1, -(2**31), 0.5, math.nan])
def test_a_list_limit_of_zero_or_less_is_the_default(kv: Any, limit: float) -> None:
    kv.put("a", "1")
    kv.put("b", "2")
    listed = kv.list(limit=limit)
    assert [key.name for key in listed.keys] == ["a", "b"]
    assert listed.list_complete


def test_a_fractional_list_limit_is_cut(kv: Any) -> None:
    kv.put("a", "1")
    kv.put("b", "2")
    listed = kv.list(limit=1.9)
    assert [key.name for key in listed.keys] == ["a"]
    assert not listed.list_complete


# ---- the REST API's query numbers: parseInt ---------------------------------------------


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ("expiration_ttl=61.9", None),
        ("expiration_ttl=+61", None),
        ("expiration_ttl=61abc", None),
        (
            "expiration_ttl=abc",
            "Invalid expiration_ttl of abc. Please specify integer greater than 0.",
        ),
        (
            "expiration_ttl=0.5",
            "Invalid expiration_ttl of 0. Please specify integer greater than 0.",
        ),
        ("expiration_ttl=1e9", "Invalid expiration_ttl of 1. Expiration TTL must be at least 60."),
        (
            "expiration=soon",
            "Invalid expiration of soon. Please specify integer greater than the current number"
            " of seconds since the UNIX epoch.",
        ),
        ("expiration=2000000000.5", None),
        (
            "expiration_ttl=99999999999",
            "Invalid expiration_ttl of 99999999999. Expiration TTL must be less than 2147483648.",
        ),
    ],
)
def test_rest_query_numbers_read_as_parse_int(
    http_node: NodeProcess, kv: Any, query: str, answer: str | None
) -> None:
    status, _, body = _http(f"{_rest(http_node, kv.id)}/values/k?{query}", "PUT", b"v")
    if answer is None:
        assert status == 200, body
        assert kv.get("k") == "v"
    else:
        assert (status, _error(body)) == (400, answer)
        assert kv.get("k") is None


# ---- keys that do not URL-decode ----------------------------------------------------------


@pytest.mark.parametrize("segment", ["%FF", "ok%C3", "%zz", "a%2"])
def test_a_key_that_does_not_url_decode_is_refused(
    http_node: NodeProcess, kv: Any, segment: str
) -> None:
    for method, body in (("PUT", b"v"), ("GET", None), ("DELETE", None)):
        status, _, answer = _http(f"{_rest(http_node, kv.id)}/values/{segment}", method, body)
        assert (status, _error(answer)) == (400, "Could not URL-decode key name"), method
    binding = BINDING.format(http=http_node.http, path=f"/{segment}?urlencoded=true")
    status, reason, _ = _http(binding, "PUT", b"v", _binding(http_node, kv.id))
    assert (status, reason) == (400, "Could not URL-decode key name")
    assert kv.list().keys == []


def test_a_key_that_decodes_to_utf8_still_works(http_node: NodeProcess, kv: Any) -> None:
    status, _, _ = _http(f"{_rest(http_node, kv.id)}/values/caf%C3%A9%20%2B%2F", "PUT", b"v")
    assert status == 200
    assert kv.get("café +/") == "v"


# ---- a bulk get's expiration --------------------------------------------------------------


def test_bulk_get_with_metadata_gives_each_expiration(http_node: NodeProcess, kv: Any) -> None:
    expiring = kv.put("expiring", "x", expiration=2_000_000_000, metadata={"m": 1})
    assert expiring.expiration == 2_000_000_000
    kv.put("lasting", "y")
    client = cloudflare.Cloudflare(
        api_token="any", base_url=f"http://{http_node.http}/client/v4", max_retries=0
    )
    answer = client.kv.namespaces.bulk_get(
        kv.id, account_id=ACCOUNT, keys=["expiring", "lasting", "missing"], with_metadata=True
    )
    assert answer is not None
    values: Any = answer.to_dict()["values"]
    assert values["expiring"] == {"value": "x", "metadata": {"m": 1}, "expiration": 2_000_000_000}
    assert values["lasting"] == {"value": "y", "metadata": None}
    assert values["missing"] is None
    # The binding answers as workerd expects: value and metadata only.
    binding = BINDING.format(http=http_node.http, path="/bulk/get")
    body = json.dumps({"keys": ["expiring"], "withMetadata": True}).encode()
    status, _, raw = _http(binding, "POST", body, _binding(http_node, kv.id))
    assert status == 200
    assert json.loads(raw) == {"expiring": {"value": "x", "metadata": {"m": 1}}}
