"""What every HTTP request goes through (rumor.node.server.http.entry), without sockets.

- ``values_target``: whenever it claims a raw path (so the request is answered
  before aiohttp's router), the router resolves that path to the same values
  route, namespace and key; plain paths are claimed, and paths the router
  reads differently (escapes, dot segments, braces) are left to it;
- ``TokenChecker`` keeps parsed headers without changing any answer;
- ``HttpGuard`` keeps Host verdicts without changing any refusal;
- ``client_gone``: a connection error is the client going away only when its
  connection is closed (anything else is an internal error);
- ``ByteBudget.admits`` / ``hold``: room now, and bytes taken without waiting.
"""

from __future__ import annotations

import asyncio
from typing import cast

from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from rumor.node.server.admission import ByteBudget
from rumor.node.server.auth import TokenChecker
from rumor.node.server.http.entry import values_target
from rumor.node.server.http.gateway import build_app
from rumor.node.server.http.guard import HttpGuard
from rumor.node.server.http.request import client_gone, raw_key_of
from rumor.node.server.operations import Operations

PREFIX = "/client/v4/accounts/acct/storage/kv/namespaces"
NAMESPACE = "0123456789abcdef0123456789abcdef"

# No operation runs: only the route table is asked.
_app = build_app(cast(Operations, object()))


def _routed(path: str) -> tuple[str | None, str | None, bytes]:
    """(route name, namespace id, key) as aiohttp's router and the routed handler see them."""
    request = make_mocked_request("GET", path, app=_app)
    match = asyncio.run(_app.router.resolve(request))
    return match.route.name, match.get("namespace_id"), raw_key_of(request)


# ---- values_target agrees with the router ------------------------------------

_PLAIN = ["a", "b", "0", "-", "_", "~", ":", "+", "=", "@", "x.y"]
_ODD = ["", "/", ".", "..", "{", "}", "%2F", "%0A", "%41", "%", "#", "?", "é", "%7B"]
_segment = st.lists(st.sampled_from(_PLAIN + _ODD), max_size=4).map("".join)
_key = st.lists(st.sampled_from(_PLAIN + _ODD + ["/", "/."]), max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(account=_segment, namespace=_segment, key=_key)
def test_a_claimed_path_is_the_routers_values_route(account: str, namespace: str, key: str) -> None:
    path = f"/client/v4/accounts/{account}/storage/kv/namespaces/{namespace}/values/{key}"
    target = values_target(path)
    if target is not None:
        assert _routed(path) == ("values.get", target[0], target[1])


def test_plain_paths_are_claimed_and_others_left_to_the_router() -> None:
    values = f"{PREFIX}/{NAMESPACE}/values/"
    assert values_target(values + "user:1") == (NAMESPACE, b"user:1")
    assert values_target(values + "a/b?cache_ttl=60") == (NAMESPACE, b"a/b")
    assert values_target(values) == (NAMESPACE, b"")
    for key in ("a%2Fb", "../x", ".env", "a/./b", "a#b", "é"):
        assert values_target(values + key) is None, key
    assert values_target(f"{PREFIX}/{{ns}}/values/k") is None
    assert values_target(f"{PREFIX}/{NAMESPACE}/metadata/k") is None
    assert values_target(f"{PREFIX}/{NAMESPACE}/values") is None
    assert values_target("/metrics") is None


# ---- kept parses and verdicts change no answer --------------------------------

_headers = st.one_of(
    st.none(),
    st.sampled_from(["Bearer secret", "bearer secret ", "Bearer wrong", "Basic x", ""]),
    st.text(max_size=12).map(lambda text: "Bearer " + text),
)


@given(st.lists(_headers, max_size=40))
def test_a_checker_answers_as_a_fresh_one(headers: list[str | None]) -> None:
    checker = TokenChecker(["secret"])
    for header in headers:
        assert checker.http_status(header) == TokenChecker(["secret"]).http_status(header)


def test_the_guard_answers_the_same_every_time() -> None:
    guard = HttpGuard.for_listener("127.0.0.1:8781")
    for _ in range(3):
        for host, token_valid, refused in (
            ("localhost:8781", False, False),
            ("127.0.0.1:8781", False, False),
            ("evil.example", False, True),
            ("evil.example", True, False),  # a valid token exempts from the Host allowlist
        ):
            request = make_mocked_request("GET", "/", headers=CIMultiDict(Host=host))
            refusal = guard.refusal(request, binding=False, token_valid=token_valid)
            assert (refusal is not None) == refused, host


# ---- a client that went away ---------------------------------------------------


class _Transport:
    def __init__(self, closing: bool) -> None:
        self.closing = closing

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def test_a_connection_error_is_the_client_leaving_only_once_its_connection_closed() -> None:
    closed = make_mocked_request("PUT", "/", transport=_Transport(closing=True))
    open_ = make_mocked_request("PUT", "/", transport=_Transport(closing=False))
    assert client_gone(closed, ConnectionResetError("Connection lost"))
    assert client_gone(closed, BrokenPipeError())
    assert not client_gone(closed, ValueError("a bug"))
    assert not client_gone(open_, ConnectionResetError("from elsewhere"))


# ---- the read budget ------------------------------------------------------------


def test_admits_and_hold() -> None:
    budget = ByteBudget(100, 1.0)
    assert budget.admits(1000)  # nothing in flight: any one read is admitted
    held = budget.hold(60)
    assert budget.in_flight == 60
    assert budget.admits(40) and not budget.admits(41)
    more = budget.hold(80)  # taken without room: what was already read
    assert budget.in_flight == 140
    held.release()
    more.release()
    assert budget.in_flight == 0
