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


def test_a_tie_names_the_same_members_whatever_the_order() -> None:
    forward = agreement({1: 0x2, 2: 0x1})
    backward = agreement({2: 0x1, 1: 0x2})
    assert not forward.agree and forward == backward
    assert forward.common == 0x1 and forward.differ == (1,)


def test_an_unknown_digest_is_not_agreement() -> None:
    result = agreement({1: 0xAB, 2: None})
    assert not result.agree and result.differ == () and result.unknown == (2,)
    assert not agreement({}).agree
    assert agreement({7: 0x5}).agree  # a single node agrees with itself
