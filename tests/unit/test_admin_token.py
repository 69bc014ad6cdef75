"""The admin token of a node without a cluster secret: written 0600, fresh each start,
accepted only when it matches and comes from this host."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rumor.node.server.admin_token import (
    ADMIN_TOKEN_FILE,
    ADMIN_TOKEN_HEADER,
    AdminToken,
    is_local_peer,
)


def test_written_for_the_owner_only_and_fresh_each_start(tmp_path: Path) -> None:
    first = AdminToken.create(str(tmp_path))
    text = (tmp_path / ADMIN_TOKEN_FILE).read_text()
    assert (tmp_path / ADMIN_TOKEN_FILE).stat().st_mode & 0o777 == 0o600
    assert first.path == (tmp_path / ADMIN_TOKEN_FILE).resolve()
    second = AdminToken.create(str(tmp_path))
    assert (tmp_path / ADMIN_TOKEN_FILE).read_text() != text
    token = (tmp_path / ADMIN_TOKEN_FILE).read_text().strip()
    assert second.allows(((ADMIN_TOKEN_HEADER, token),), "ipv4:127.0.0.1:4000")
    assert not first.allows(((ADMIN_TOKEN_HEADER, token),), "ipv4:127.0.0.1:4000")
    assert not list(tmp_path.glob("*.new"))


def test_only_the_token_from_this_host(tmp_path: Path) -> None:
    guard = AdminToken.create(str(tmp_path))
    token = (tmp_path / ADMIN_TOKEN_FILE).read_text().strip()
    right = ((ADMIN_TOKEN_HEADER, token),)
    for peer in ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/run/rumor/owner.sock"):
        assert guard.allows(right, peer)
        assert guard.allows(((ADMIN_TOKEN_HEADER, token.encode()),), peer)
    for peer in ("ipv4:10.0.0.7:5000", "ipv6:[2001:db8::1]:5000", "ipv4:128.0.0.1:1"):
        assert not guard.allows(right, peer)
    local = "ipv4:127.0.0.1:5000"
    assert not guard.allows(None, local)
    assert not guard.allows((), local)
    assert not guard.allows(((ADMIN_TOKEN_HEADER, token + "x"),), local)
    assert not guard.allows((("x-rumor-cluster-secret", token),), local)


@given(st.text(max_size=80))
def test_a_guess_is_refused(guess: str) -> None:
    guard = AdminToken("the-real-token-" + "a" * 30, Path("admin-token"))
    assert not guard.allows(((ADMIN_TOKEN_HEADER, guess),), "ipv4:127.0.0.1:1")


@given(st.ip_addresses())
def test_local_peers_are_loopback_addresses(address: object) -> None:
    text = str(address)
    peer = f"ipv6:[{text}]:1" if ":" in text else f"ipv4:{text}:1"
    assert is_local_peer(peer) == (
        getattr(address, "is_loopback", False) and (text == "::1" or text.startswith("127."))
    )
