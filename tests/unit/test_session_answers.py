"""The tokens a node's answers carry: the join of the request's token and what was read.

The node keeps recently parsed tokens (a session sends the same one read after
read) and answers a read that found nothing newer with the request's own text:
whatever is cached, the answer decodes to the same join.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.client.session_token import SessionToken
from rumor.node.core.errors import InvalidRequest
from rumor.node.core.record import RecordHeader
from rumor.node.server import sessions

origins = st.integers(min_value=1, max_value=8)  # few origins: reads often hit the token's
seqs = st.integers(min_value=1, max_value=(1 << 64) - 1)
tokens = st.dictionaries(origins, seqs, max_size=4).map(SessionToken)
headers = st.lists(
    st.one_of(st.none(), st.builds(lambda o, s: RecordHeader(1, o, s), origins, seqs)), max_size=4
)


def joined(token: SessionToken, read: list[RecordHeader | None]) -> SessionToken:
    return token.merge(SessionToken.of((h.origin, h.seq) for h in read if h is not None))


@given(tokens, headers, st.booleans())
def test_an_answer_is_the_join_of_the_token_and_what_was_read(
    token: SessionToken, read: list[RecordHeader | None], cached: bool
) -> None:
    text = token.encode()
    if not cached:
        sessions._parsed.clear()
        sessions._texts.clear()
    parsed = sessions.parse(text)
    assert parsed is not None and parsed.marks == token.marks
    assert sessions.parse(text) is parsed  # parsed once
    answer = SessionToken.decode(sessions.answer_token(parsed, read))
    assert answer == joined(token, read)


@given(tokens, headers)
def test_a_token_not_parsed_here_answers_the_same(
    token: SessionToken, read: list[RecordHeader | None]
) -> None:
    assert SessionToken.decode(sessions.answer_token(token, read)) == joined(token, read)


def test_a_read_of_nothing_newer_answers_the_requests_own_text() -> None:
    text = SessionToken({5: 10}).encode()
    parsed = sessions.parse(text)
    assert sessions.answer_token(parsed, [RecordHeader(1, 5, 9), None]) == text
    assert sessions.answer_token(parsed, [RecordHeader(1, 5, 11)]) != text


def test_the_cache_is_bounded() -> None:
    for seq in range(1, sessions.MAX_PARSED + 10):
        sessions.parse(SessionToken({1: seq}).encode())
    assert len(sessions._parsed) <= sessions.MAX_PARSED
    assert len(sessions._texts) == len(sessions._parsed)


@pytest.mark.parametrize("text", ["2nope", "1***", "x"])
def test_what_is_not_a_token_is_refused_and_not_kept(text: str) -> None:
    with pytest.raises(InvalidRequest, match="Invalid session token"):
        sessions.parse(text)
    assert text not in sessions._parsed
