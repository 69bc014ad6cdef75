"""Session tokens: merge is a join, the text form round-trips, old tokens still read."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.client.session_token import EMPTY, InvalidToken, SessionToken, encode_one

origins = st.integers(min_value=1, max_value=(1 << 64) - 1)
seqs = st.integers(min_value=1, max_value=(1 << 64) - 1)
tokens = st.dictionaries(origins, seqs, max_size=8).map(SessionToken)


@given(tokens, tokens)
def test_merge_is_commutative(a: SessionToken, b: SessionToken) -> None:
    assert a.merge(b) == b.merge(a)


@given(tokens, tokens, tokens)
def test_merge_is_associative(a: SessionToken, b: SessionToken, c: SessionToken) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(origins, st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_a_write_token_is_the_token_of_its_one_version(origin: int, seq: int) -> None:
    # The node answers every write with ``encode_one``, without building the token.
    assert encode_one(origin, seq) == SessionToken({origin: seq}).encode()
    assert SessionToken.decode(encode_one(origin, seq)).covers(SessionToken({origin: seq}))


@given(tokens)
def test_merge_is_idempotent(a: SessionToken) -> None:
    assert a.merge(a) == a
    assert a.merge(EMPTY) == a


@given(tokens, tokens)
def test_merge_is_the_least_upper_bound(a: SessionToken, b: SessionToken) -> None:
    joined = a.merge(b)
    assert joined.covers(a) and joined.covers(b)
    assert set(joined.marks) == set(a.marks) | set(b.marks)
    for origin, seq in joined.marks.items():
        assert seq == max(a.marks.get(origin, 0), b.marks.get(origin, 0))


@given(tokens)
def test_encoding_round_trips(token: SessionToken) -> None:
    text = token.encode()
    assert re.fullmatch(r"1[A-Za-z0-9_-]*", text)  # URL-safe, no padding
    assert SessionToken.decode(text) == token


@given(st.lists(st.tuples(origins, seqs), max_size=8))
def test_equal_tokens_encode_equally(pairs: list[tuple[int, int]]) -> None:
    assert SessionToken.of(pairs).encode() == SessionToken.of(reversed(pairs)).encode()


@given(tokens, tokens)
def test_merging_encoded_tokens_is_merging_tokens(a: SessionToken, b: SessionToken) -> None:
    merged = SessionToken.decode(a.encode()).merge(SessionToken.decode(b.encode()))
    assert merged.encode() == a.merge(b).encode()


# Tokens written by the first release of the format: every later version reads them.
GOLDEN = {
    "1": {},
    "1AAAAAAAAAAEB": {1: 1},
    "1ASNFZ4mrze8q": {0x0123456789ABCDEF: 42},
    "1ASNFZ4mrze-AAvHi08S1ppeIgKDZ5h0": {
        0x0123456789ABCDEF: 256,
        0xF1E2D3C4B5A69788: 8_000_000_000,
    },
}


@pytest.mark.parametrize(("text", "marks"), list(GOLDEN.items()))
def test_an_older_token_still_reads(text: str, marks: dict[int, int]) -> None:
    assert SessionToken.decode(text) == SessionToken(marks)
    assert SessionToken(marks).encode() == text


def test_the_empty_text_is_the_empty_token() -> None:
    assert SessionToken.decode("") == EMPTY
    assert EMPTY.encode() == "1"


@pytest.mark.parametrize(
    "text",
    ["2AAAA", "x", "1AAAAAAAAAAE", "1AAAAAAAAAAGA", "1!!", "1" + "A" * 5000],
)
def test_what_is_not_a_token_is_refused(text: str) -> None:
    with pytest.raises(InvalidToken):
        SessionToken.decode(text)
