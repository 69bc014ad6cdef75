"""Scoped tokens (rumor.node.server.auth, .access): token lines, grants, what each call needs.

- a token line is ``TOKEN [SCOPES [NAMESPACE ...]]``; a bare token is admin;
  ``sha256:HEX`` stands for the token with that digest; ``#`` starts a comment;
  a bad scope or digest is a ValueError naming the line;
- admin implies read and write; read and write are independent;
- namespace limits match ids exactly and titles by a prefix ending in ``*``;
  a Watch of every namespace needs an unlimited token;
- every KV method and every HTTP route (REST, console, binding) has a rule;
- the token's id is derived from its digest and never contains the token.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core.errors import PermissionDenied
from rumor.node.server import auth
from rumor.node.server.access import (
    BATCH_OP_RULES,
    KV_RULES,
    Target,
    http_rule,
    permits,
    require_title,
    visible,
)
from rumor.node.server.auth import Grant, Scope, TokenChecker, parse_token, parse_token_lines
from rumor.node.server.console import app as console
from rumor.node.server.grpc.server import KV_SERVICE
from rumor.node.server.http.gateway import PUBLIC_PATHS, build_app
from rumor.v1 import kv_pb2

NS_A = "a" * 32
NS_B = "b" * 32
TITLES = {NS_A: "team-a-sessions", NS_B: "team-b-sessions"}


async def _titles(namespace_id: str) -> str | None:
    return TITLES.get(namespace_id)


# ---- token lines --------------------------------------------------------------


def test_bare_token_is_admin_everywhere() -> None:
    entry = parse_token("s3cret")
    assert entry.grant.scopes == {Scope.ADMIN}
    assert entry.grant.namespaces == ()
    assert entry.clear == "s3cret"
    assert entry.digest == hashlib.sha256(b"s3cret").digest()


def test_scopes_and_namespaces() -> None:
    entry = parse_token(f"reader read,WRITE {NS_A} team-b-*")
    assert entry.grant.scopes == {Scope.READ, Scope.WRITE}
    assert entry.grant.namespaces == (NS_A, "team-b-*")


def test_file_lines_comments_and_line_numbers() -> None:
    text = f"# tokens\n\nalpha read {NS_A}  # the dashboard\nbeta\n"
    entries = parse_token_lines(text, "tokens")
    assert [e.clear for e in entries] == ["alpha", "beta"]
    assert entries[0].grant.namespaces == (NS_A,)
    with pytest.raises(ValueError, match="tokens line 2: unknown scope 'delete'"):
        parse_token_lines("ok\nbad delete\n", "tokens")
    with pytest.raises(ValueError, match="64 hex digits"):
        parse_token_lines("sha256:abc read\n", "tokens")
    with pytest.raises(ValueError, match="only ends a title prefix"):
        parse_token_lines("tok read te*am\n", "tokens")


@given(st.text(alphabet=st.characters(categories=("L", "N", "P")), min_size=1, max_size=40))
def test_a_digest_line_grants_what_the_clear_line_grants(token: str) -> None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    by_digest = TokenChecker([parse_token(f"sha256:{digest} read {NS_A}")])
    grant = by_digest.grant_of(f"Bearer {token}")
    assert grant == parse_token(f"{token} read {NS_A}").grant
    assert grant is not None and grant.token_id == f"tok-{digest[:12]}"
    assert by_digest.presentable() is None  # the node does not know the token


def test_checker_finds_each_tokens_grant() -> None:
    checker = TokenChecker([parse_token("admin-tok"), parse_token(f"read-tok read {NS_A}")])
    admin = checker.grant_of("Bearer admin-tok")
    reader = checker.grant_of("bearer read-tok")
    assert admin is not None and admin.scopes == {Scope.ADMIN}
    assert reader is not None and reader.scopes == {Scope.READ}
    assert checker.grant_of("Bearer nope") is None
    assert checker.http_status(None) == 401
    assert checker.http_status("Bearer nope") == 403
    assert checker.presentable() == "admin-tok"
    checker.replace([parse_token("new-tok")])
    assert checker.grant_of("Bearer admin-tok") is None
    assert checker.grant_of("Bearer new-tok") is not None


# ---- scopes and namespaces ------------------------------------------------------


def test_admin_implies_the_others_read_and_write_are_independent() -> None:
    admin = Grant("t", frozenset({Scope.ADMIN}))
    writer = Grant("t", frozenset({Scope.WRITE}))
    assert all(admin.has(scope) for scope in Scope)
    assert writer.has(Scope.WRITE)
    assert not writer.has(Scope.READ)
    assert not writer.has(Scope.ADMIN)


async def test_namespace_limits_by_id_and_title_prefix() -> None:
    by_id = Grant("t", frozenset({Scope.READ}), (NS_A,))
    by_title = Grant("t", frozenset({Scope.READ}), ("team-b-*",))
    assert await permits(by_id, Scope.READ, [Target(NS_A)], _titles)
    assert not await permits(by_id, Scope.READ, [Target(NS_B)], _titles)
    assert not await permits(by_id, Scope.WRITE, [Target(NS_A)], _titles)
    assert await permits(by_title, Scope.READ, [Target(NS_B)], _titles)
    assert not await permits(by_title, Scope.READ, [Target(NS_A)], _titles)
    assert not await permits(by_title, Scope.READ, [Target("c" * 32)], _titles)  # unknown
    assert await permits(by_title, Scope.READ, [Target(title="team-b-new")], _titles)
    assert not await permits(by_id, Scope.READ, [Target(every=True)], _titles)
    assert await permits(
        Grant("t", frozenset({Scope.READ})), Scope.READ, [Target(every=True)], _titles
    )
    assert await permits(None, Scope.ADMIN, [Target(NS_A)], _titles)  # an open API


def test_listing_shows_only_reachable_namespaces() -> None:
    infos = [SimpleNamespace(id=ns, title=title) for ns, title in TITLES.items()]
    limited = Grant("t", frozenset({Scope.READ}), ("team-a-*",))
    assert [info.id for info in visible(limited, infos)] == [NS_A]
    assert visible(Grant("t", frozenset({Scope.READ})), infos) == infos
    assert visible(None, infos) == infos


def test_a_new_title_must_be_within_reach() -> None:
    auth.set_caller(Grant("tok-1", frozenset({Scope.ADMIN}), ("team-a-*",)))
    try:
        require_title("team-a-cache")
        with pytest.raises(PermissionDenied, match="team-b-cache") as caught:
            require_title("team-b-cache")
        assert caught.value.token_id == "tok-1"
    finally:
        auth.set_caller(None)


# ---- every call has a rule --------------------------------------------------------


def test_every_kv_method_has_a_rule() -> None:
    assert {method.name for method in KV_SERVICE.methods} == set(KV_RULES)
    assert set(BATCH_OP_RULES) == {
        field.name for field in kv_pb2.BatchOp.DESCRIPTOR.oneofs_by_name["op"].fields
    }


def test_kv_rules_name_the_right_scope_and_namespace() -> None:
    put = kv_pb2.PutRequest(namespace_id=NS_A)
    assert KV_RULES["Put"].scope is Scope.WRITE
    assert KV_RULES["Put"].targets(put) == (Target(NS_A),)
    assert KV_RULES["DeleteNamespace"].scope is Scope.ADMIN
    rename = kv_pb2.RenameNamespaceRequest(namespace_id=NS_A, title="x")
    assert KV_RULES["RenameNamespace"].targets(rename) == (Target(NS_A), Target(title="x"))
    assert KV_RULES["Watch"].targets(kv_pb2.WatchRequest(all_namespaces=True)) == (
        Target(every=True),
    )
    streamed = kv_pb2.PutStreamRequest(header=kv_pb2.PutRequest(namespace_id=NS_B))
    assert KV_RULES["PutStream"].targets(streamed) == (Target(NS_B),)
    assert KV_RULES["PutStream"].targets(kv_pb2.PutStreamRequest(chunk=b"x")) == ()


def test_every_http_route_has_a_rule() -> None:
    app = build_app(SimpleNamespace())  # type: ignore[arg-type]
    console.add_routes(app, console.Console(SimpleNamespace(), SimpleNamespace()))  # type: ignore[arg-type]
    open_routes = {"healthz", "metrics", "console.root", "console.index", "console.asset"}
    open_routes |= {"console.session", "console.login", "console.logout"}
    for resource in app.router.resources():
        for route in resource:
            name = route.name or ""
            if name in open_routes or (resource.canonical in PUBLIC_PATHS):
                continue
            assert http_rule(name) is not None, name
    for name in ("binding.get", "binding.put", "binding.delete", "binding.list"):
        assert http_rule(name) is not None
    assert http_rule("console.namespaces.delete") == http_rule("namespaces.delete")
