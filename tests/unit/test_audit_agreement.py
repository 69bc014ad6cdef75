"""audit.agreement: alive members agree only when every digest is known and equal."""

from __future__ import annotations

from rumor.node.core.audit import agreement


def test_equal_digests_agree() -> None:
    result = agreement({1: 0xAB, 2: 0xAB, 3: 0xAB})
    assert result.agree and result.common == 0xAB
    assert result.differ == () and result.unknown == ()


def test_a_differing_member_is_named() -> None:
    result = agreement({1: 0xAB, 2: 0xCD, 3: 0xAB})
    assert not result.agree
    assert result.common == 0xAB and result.differ == (2,)


def test_without_a_majority_every_member_differs() -> None:
    for digests in ({1: 0x2, 2: 0x1}, {2: 0x1, 1: 0x2}, {1: 0x1, 2: 0x2, 3: 0x3}):
        result = agreement(digests)
        assert not result.agree and result.common is None
        assert result.differ == tuple(sorted(digests))


def test_an_unknown_digest_is_not_agreement() -> None:
    result = agreement({1: 0xAB, 2: None})
    assert not result.agree and result.differ == () and result.unknown == (2,)
    assert not agreement({}).agree
    assert agreement({7: 0x5}).agree  # a single node agrees with itself
