"""List pages and their exact Workers KV messages.

Checks rumor.node.core.paging: page sizes (the gRPC and HTTP list limits, the
HTTP namespace list's per_page) and cursors (every key round-trips, garbage is
refused in one clear message).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.core import paging
from rumor.node.core.errors import InvalidRequest

URL_SAFE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
# Keys a cursor may name: UTF-8, 1..512 bytes (at most 4 bytes a character).
valid_keys = st.text(min_size=1, max_size=128).map(str.encode)


# ---- list limit -------------------------------------------------------------


def test_list_limit_defaults_to_1000() -> None:
    assert paging.list_limit(None) == 1000


@pytest.mark.parametrize("limit", [1, 2, 999, 1000])
def test_list_limits_in_range_are_accepted(limit: int) -> None:
    assert paging.list_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, -1, -1000])
def test_list_limit_of_zero_or_less_means_the_default(limit: int) -> None:
    """workerd drops such a limit instead of sending it; every API reads it the same way."""
    assert paging.list_limit(limit) == 1000
    assert paging.http_list_limit(limit) == 1000


def test_http_list_limit_below_ten_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        paging.http_list_limit(9)
    assert "Invalid key_count_limit of 9." in str(caught.value)


def test_list_limit_above_1000_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        paging.list_limit(1001)
    assert str(caught.value) == (
        "Invalid key_count_limit of 1001. Please specify an integer less than 1000."
    )


# ---- pages of the HTTP namespace list -------------------------------------


@pytest.mark.parametrize("per_page", [1, 20, 100, 1000])
def test_per_page_up_to_1000_is_accepted(per_page: int) -> None:
    assert paging.per_page(per_page) == per_page


@pytest.mark.parametrize("per_page", [0, 1001])
def test_per_page_outside_1_to_1000_is_rejected(per_page: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        paging.per_page(per_page)
    assert str(caught.value) == (
        f"Invalid per_page of {per_page}. Please specify an integer from 1 to 1000."
    )


# ---- cursors ----------------------------------------------------------------


def test_empty_cursor_means_from_the_start() -> None:
    assert paging.cursor(b"") is None


@given(valid_keys)
def test_cursor_round_trips_every_key(raw: bytes) -> None:
    encoded = paging.encode_cursor(raw)
    assert paging.cursor(encoded) == raw


@given(valid_keys)
def test_cursor_is_url_safe_text(raw: bytes) -> None:
    encoded = paging.encode_cursor(raw)
    assert encoded
    assert set(encoded) <= URL_SAFE


def test_cursor_of_a_512_byte_key_round_trips() -> None:
    raw = b"z" * 512
    assert paging.cursor(paging.encode_cursor(raw)) == raw


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


@pytest.mark.parametrize(
    "garbage",
    [
        b"!!!",
        b"not a cursor",
        b"A",
        b"\xff\xfe",
        _b64(b"\x02abc"),  # unknown format
        _b64(b"abc"),
        _b64(b"\x01"),  # no key
        _b64(b"\x01\xff\xfe"),  # key not UTF-8
        _b64(b"\x01" + b"k" * 513),  # key too long
    ],
    ids=[
        "punctuation",
        "words",
        "one-char",
        "binary",
        "format",
        "no-format",
        "empty-key",
        "not-utf8",
        "too-long",
    ],
)
def test_garbage_cursor_is_rejected_with_a_clear_message(garbage: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        paging.cursor(garbage)
    message = str(caught.value)
    assert message.startswith('Invalid cursor "')
    assert message.endswith("Pass the cursor returned by the previous list call.")


def test_garbage_cursor_message_shows_at_most_64_characters() -> None:
    garbage = b"!" * 500
    with pytest.raises(InvalidRequest) as caught:
        paging.cursor(garbage)
    assert f'"{"!" * 64}"' in str(caught.value)
    assert "!" * 65 not in str(caught.value)


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_any_cursor_bytes_give_a_valid_key_or_invalid_request(raw: bytes) -> None:
    try:
        result = paging.cursor(raw)
    except InvalidRequest as exc:
        assert str(exc).startswith('Invalid cursor "')
        return
    if raw == b"":
        assert result is None
    else:
        assert result is not None
        assert 1 <= len(result) <= 512
        result.decode()  # raises if not UTF-8
