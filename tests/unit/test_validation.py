"""Every limit of the data model and its exact Workers KV message.

Checks rumor.node.core.validation: keys, prefixes, values, metadata (size counted
in UTF-8 bytes of compact JSON), expirations (TTL and absolute, with the configured
minimum), bulk limits, titles, and the exception classes the
gRPC service and the HTTP gateway map to statuses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.core import validation
from rumor.node.core.errors import InvalidRequest, KeyTooLong, RumorError, ValueTooLarge

NOW = 1_700_000_000.0
NOW_INT = 1_700_000_000

valid_keys = (
    st.text(min_size=1, max_size=200)
    .map(str.encode)
    .filter(lambda raw: len(raw) <= 512 and raw not in (b".", b".."))
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**18), max_value=10**18)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)


# ---- exception classes ------------------------------------------------------


def test_exception_classes_form_the_documented_hierarchy() -> None:
    assert issubclass(InvalidRequest, ValueError)
    assert issubclass(InvalidRequest, RumorError)
    assert issubclass(ValueTooLarge, InvalidRequest)
    assert issubclass(KeyTooLong, InvalidRequest)
    assert not issubclass(ValueTooLarge, KeyTooLong)
    assert not issubclass(KeyTooLong, ValueTooLarge)


# ---- keys -------------------------------------------------------------------


def test_empty_key_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.key(b"")
    assert str(caught.value) == "Key name cannot be empty."
    assert type(caught.value) is InvalidRequest


def test_single_dot_key_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.key(b".")
    assert str(caught.value) == '"." is not allowed as a key name.'


def test_double_dot_key_is_rejected_naming_the_key() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.key(b"..")
    assert str(caught.value) == '".." is not allowed as a key name.'


@pytest.mark.parametrize("raw", [b"...", b"./", b"a.", b".a", b" ."])
def test_keys_with_dots_that_are_not_dot_or_dot_dot_are_accepted(raw: bytes) -> None:
    assert validation.key(raw) == raw


def test_key_of_512_bytes_is_accepted() -> None:
    raw = b"k" * 512
    assert validation.key(raw) == raw


def test_key_of_513_bytes_is_rejected_as_too_long() -> None:
    with pytest.raises(KeyTooLong) as caught:
        validation.key(b"k" * 513)
    assert str(caught.value) == "UTF-8 encoded length of 513 exceeds key length limit of 512."


def test_multibyte_key_is_measured_in_utf8_bytes() -> None:
    raw = ("é" * 257).encode()  # 257 characters, 514 bytes
    assert len(raw) == 514
    with pytest.raises(KeyTooLong) as caught:
        validation.key(raw)
    assert str(caught.value) == "UTF-8 encoded length of 514 exceeds key length limit of 512."


def test_multibyte_key_of_exactly_512_bytes_is_accepted() -> None:
    raw = ("€" * 170 + "ab").encode()  # 3 * 170 + 2 bytes
    assert len(raw) == 512
    assert validation.key(raw) == raw


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"caf\xc3", b"\xed\xa0\x80", b"ok\x80ok", b"\xc0\xaf"],
    ids=["ff", "truncated", "surrogate", "stray-continuation", "overlong"],
)
def test_invalid_utf8_key_is_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.key(raw)
    assert str(caught.value) == "Key name must be valid UTF-8."


@given(valid_keys)
def test_every_valid_key_is_returned_unchanged(raw: bytes) -> None:
    assert validation.key(raw) == raw


# ---- prefixes ---------------------------------------------------------------


def test_empty_prefix_is_allowed() -> None:
    assert validation.prefix(b"") == b""


def test_prefix_of_512_bytes_is_accepted() -> None:
    assert validation.prefix(b"p" * 512) == b"p" * 512


def test_prefix_of_513_bytes_is_rejected_as_too_long() -> None:
    with pytest.raises(KeyTooLong) as caught:
        validation.prefix(b"p" * 513)
    assert str(caught.value) == "UTF-8 encoded length of 513 exceeds key length limit of 512."


def test_invalid_utf8_prefix_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.prefix(b"a\xff")
    assert str(caught.value) == "Prefix must be valid UTF-8."


# ---- values -----------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 26_214_400])
def test_values_up_to_25_mib_are_accepted(length: int) -> None:
    assert validation.value_length(length) == length


def test_value_of_26214401_bytes_is_rejected() -> None:
    with pytest.raises(ValueTooLarge) as caught:
        validation.value_length(26_214_401)
    assert str(caught.value) == "Value length of 26214401 exceeds limit of 26214400."


# ---- metadata ---------------------------------------------------------------


def test_absent_metadata_stays_absent() -> None:
    assert validation.metadata(None) is None


def test_metadata_is_normalised_to_compact_json() -> None:
    raw = b'{ "a" : [1, 2,  3],\n  "b": "\\u00e9t\\u00e9", "c": {"d" : null} }'
    assert validation.metadata(raw) == '{"a":[1,2,3],"b":"été","c":{"d":null}}'.encode()


def test_json_null_is_valid_metadata() -> None:
    assert validation.metadata(b" null ") == b"null"


def _metadata_of_bytes(size: int) -> dict[str, str]:
    """A JSON object whose compact UTF-8 form is ``size`` bytes, mostly two-byte characters."""
    overhead = len(b'{"k":""}')
    pairs, odd = divmod(size - overhead, 2)
    return {"k": "é" * pairs + "a" * odd}


def test_metadata_of_1024_utf8_bytes_is_accepted() -> None:
    value = _metadata_of_bytes(1024)
    assert len(json.dumps(value, separators=(",", ":"))) > 1024  # ensure_ascii would be too big
    raw = json.dumps(value).encode()
    compact = validation.metadata(raw)
    assert compact is not None
    assert len(compact) == 1024
    assert json.loads(compact) == value


def test_metadata_of_1025_utf8_bytes_is_rejected() -> None:
    value = _metadata_of_bytes(1025)
    assert len(json.dumps(value, separators=(",", ":"), ensure_ascii=False)) < 1024  # characters
    with pytest.raises(ValueTooLarge) as caught:
        validation.metadata(json.dumps(value).encode())
    assert str(caught.value) == "Metadata length of 1025 exceeds limit of 1024."


def test_metadata_size_is_measured_after_compaction() -> None:
    value = {"k": "x" * 1016}  # compact: exactly 1024 bytes
    padded = json.dumps(value, indent=8).encode()
    assert len(padded) > 1024
    compact = validation.metadata(padded)
    assert compact is not None
    assert len(compact) == 1024


def test_parsed_metadata_value_of_1025_bytes_is_rejected() -> None:
    with pytest.raises(ValueTooLarge) as caught:
        validation.metadata_value(_metadata_of_bytes(1025))
    assert str(caught.value) == "Metadata length of 1025 exceeds limit of 1024."


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'a': 1}", b"undefined", b"NaN", b"[Infinity]", b"-Infinity", b'"\xff"', b"1 2"],
)
def test_invalid_json_metadata_is_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.metadata(raw)
    assert str(caught.value) == "Metadata must be valid JSON."
    assert not isinstance(caught.value, ValueTooLarge)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [float("-inf")], {1, 2}, b"x"])
def test_parsed_metadata_that_is_not_json_is_rejected(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.metadata_value(value)
    assert str(caught.value) == "Metadata must be valid JSON."


@settings(max_examples=150)
@given(json_values)
def test_metadata_round_trips_or_reports_its_exact_compact_size(value: Any) -> None:
    compact_text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size = len(compact_text.encode())
    raw = json.dumps(value, indent=1).encode()
    if size <= 1024:
        result = validation.metadata(raw)
        assert result == compact_text.encode()
        assert json.loads(result) == value
    else:
        with pytest.raises(ValueTooLarge) as caught:
            validation.metadata(raw)
        assert str(caught.value) == f"Metadata length of {size} exceeds limit of 1024."


# ---- expiration -------------------------------------------------------------


def test_no_expiration_means_never() -> None:
    assert validation.expiration(None, None, now_s=NOW) == 0


@pytest.mark.parametrize("ttl", [0, -1, -3600])
def test_ttl_not_positive_is_rejected(ttl: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(None, ttl, now_s=NOW)
    assert (
        str(caught.value)
        == f"Invalid expiration_ttl of {ttl}. Please specify integer greater than 0."
    )


def test_ttl_zero_is_rejected_as_not_positive_even_with_minimum_one() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(None, 0, now_s=NOW, min_ttl=1)
    assert (
        str(caught.value) == "Invalid expiration_ttl of 0. Please specify integer greater than 0."
    )


def test_ttl_below_the_default_minimum_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(None, 30, now_s=NOW)
    assert str(caught.value) == "Invalid expiration_ttl of 30. Expiration TTL must be at least 60."


def test_ttl_one_below_the_minimum_is_rejected_naming_the_configured_minimum() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(None, 59, now_s=NOW, min_ttl=60)
    assert str(caught.value) == "Invalid expiration_ttl of 59. Expiration TTL must be at least 60."


def test_ttl_equal_to_the_minimum_is_accepted() -> None:
    assert validation.expiration(None, 60, now_s=NOW, min_ttl=60) == NOW_INT + 60


def test_ttl_of_one_is_accepted_with_minimum_one() -> None:
    assert validation.expiration(None, 1, now_s=NOW, min_ttl=1) == NOW_INT + 1
    assert validation.expiration(None, 30, now_s=NOW, min_ttl=1) == NOW_INT + 30


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.5, 0.999])
def test_ttl_counts_from_the_current_whole_second(fraction: float) -> None:
    """Miniflare's rule: floor(now) + ttl, so the key never outlives its TTL."""
    result = validation.expiration(None, 120, now_s=NOW + fraction)
    assert isinstance(result, int)
    assert result == NOW_INT + 120


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.999])
def test_expiration_exactly_the_minimum_after_the_whole_second_is_accepted(
    fraction: float,
) -> None:
    assert validation.expiration(NOW_INT + 60, None, now_s=NOW + fraction) == NOW_INT + 60


@pytest.mark.parametrize("ttl", [2**31, 2**31 + 1, 2**63, 2**64 + 5])
def test_ttl_beyond_the_32_bit_range_is_rejected(ttl: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(None, ttl, now_s=NOW)
    assert str(caught.value) == (
        f"Invalid expiration_ttl of {ttl}. Expiration TTL must be less than 2147483648."
    )


def test_a_ttl_is_accepted_only_while_the_expiration_it_gives_stays_below_2_to_the_31() -> None:
    largest = 2**31 - 1 - NOW_INT
    assert validation.expiration(None, largest, now_s=NOW) == 2**31 - 1
    for ttl in (largest + 1, 2**31 - 1):
        with pytest.raises(InvalidRequest) as caught:
            validation.expiration(None, ttl, now_s=NOW)
        assert str(caught.value) == (
            f"Invalid expiration_ttl of {ttl}. The expiration it gives ({NOW_INT + ttl}) must"
            " be less than 2147483648 seconds since the UNIX epoch."
        )


@pytest.mark.parametrize("absolute", [2**31, 2**62, 2**64])
def test_expiration_beyond_the_32_bit_range_is_rejected(absolute: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(absolute, None, now_s=NOW)
    assert str(caught.value) == (
        f"Invalid expiration of {absolute}. Expiration times must be less than 2147483648"
        " seconds since the UNIX epoch."
    )


def test_expiration_just_inside_the_32_bit_range_is_accepted() -> None:
    assert validation.expiration(2**31 - 1, None, now_s=NOW) == 2**31 - 1


# ---- cache ttl --------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, 30, 60, "30", "60", 2**31 - 1])
def test_cache_ttl_of_30_or_more_is_accepted_and_numeric_strings_count(raw: object) -> None:
    assert validation.cache_ttl(raw) == (None if raw is None else int(str(raw)))


@pytest.mark.parametrize(
    ("raw", "shown"), [(10, "10"), ("10", "10"), (0, "0"), (-5, "-5"), ("abc", "abc"), (29, "29")]
)
def test_cache_ttl_below_30_or_not_a_number_is_rejected(raw: object, shown: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.cache_ttl(raw)
    assert str(caught.value) == f"Invalid cache_ttl of {shown}. Cache TTL must be at least 30."


def test_cache_ttl_beyond_the_32_bit_range_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.cache_ttl(2**31)
    assert str(caught.value) == (
        "Invalid cache_ttl of 2147483648. Cache TTL must be less than 2147483648."
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(5, 5), ("7", 7), (" 7 ", 7), ("+7", 7), (8.0, 8), (str(2**63 - 1), 2**63 - 1)],
)
def test_integers_may_be_given_as_text(raw: object, expected: int) -> None:
    assert validation.integer(raw, "expiration") == expected


def test_a_large_integer_given_as_text_is_read_exactly_not_through_a_float() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(None, validation.integer(str(2**63 - 1), "x"), now_s=NOW)
    assert f"of {2**63 - 1}." in str(caught.value)  # not ...808


@pytest.mark.parametrize(
    "raw", ["x", "1.5", "60.0", "1e3", "0x10", "٣", "1" * 31, "", True, 1.5, "inf", None]
)
def test_non_integers_are_rejected_with_their_name(raw: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.integer(raw, "expiration_ttl")
    assert str(caught.value).startswith("Invalid expiration_ttl of ")
    assert str(caught.value).endswith(". Please specify an integer.")


@pytest.mark.parametrize("absolute", [NOW_INT - 1, NOW_INT, 0, 1])
def test_expiration_not_in_the_future_is_rejected(absolute: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(absolute, None, now_s=NOW)
    assert str(caught.value) == (
        f"Invalid expiration of {absolute}. Please specify integer greater than"
        " the current number of seconds since the UNIX epoch."
    )


def test_expiration_equal_to_now_is_rejected_with_minimum_one() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(NOW_INT, None, now_s=NOW, min_ttl=1)
    assert "Please specify integer greater than the current number" in str(caught.value)


def test_expiration_closer_than_the_minimum_is_rejected() -> None:
    absolute = NOW_INT + 59
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(absolute, None, now_s=NOW)
    assert str(caught.value) == (
        f"Invalid expiration of {absolute}. Expiration times must be at least"
        " 60 seconds in the future."
    )


def test_expiration_closer_than_a_configured_minimum_names_that_minimum() -> None:
    absolute = NOW_INT + 10
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(absolute, None, now_s=NOW, min_ttl=30)
    assert str(caught.value) == (
        f"Invalid expiration of {absolute}. Expiration times must be at least"
        " 30 seconds in the future."
    )


def test_expiration_exactly_the_minimum_ahead_is_accepted() -> None:
    assert validation.expiration(NOW_INT + 60, None, now_s=NOW) == NOW_INT + 60
    assert validation.expiration(NOW_INT + 1, None, now_s=NOW, min_ttl=1) == NOW_INT + 1


def test_ttl_wins_over_an_invalid_absolute_expiration() -> None:
    assert validation.expiration(NOW_INT - 100, 120, now_s=NOW) == NOW_INT + 120


def test_ttl_wins_over_a_valid_absolute_expiration() -> None:
    assert validation.expiration(NOW_INT + 86_400, 120, now_s=NOW) == NOW_INT + 120


def test_invalid_ttl_is_reported_even_with_a_valid_absolute_expiration() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.expiration(NOW_INT + 86_400, 0, now_s=NOW)
    assert "expiration_ttl of 0" in str(caught.value)


# ---- bulk limits ------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 50, 100])
def test_bulk_get_of_1_to_100_keys_is_accepted(count: int) -> None:
    validation.bulk_get_size(count)  # raises on failure


def test_bulk_get_of_no_keys_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.bulk_get_size(0)
    assert str(caught.value) == "You must request a minimum of 1 key"


def test_bulk_get_of_101_keys_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.bulk_get_size(101)
    assert str(caught.value) == "You can request a maximum of 100 keys"


@pytest.mark.parametrize("value_type", ["text", "json"])
def test_bulk_get_types_text_and_json_are_accepted(value_type: str) -> None:
    assert validation.bulk_get_type(value_type) == value_type


@pytest.mark.parametrize("value_type", ["", "arrayBuffer", "stream", "JSON"])
def test_other_bulk_get_types_are_rejected(value_type: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.bulk_get_type(value_type)
    assert str(caught.value) == f'"{value_type}" is not a valid type. Use "json" or "text"'


def test_bulk_get_of_exactly_25_mib_is_accepted() -> None:
    validation.bulk_get_total(25 * 1024 * 1024)  # raises on failure


def test_bulk_get_over_25_mib_is_rejected_as_too_large() -> None:
    with pytest.raises(ValueTooLarge) as caught:
        validation.bulk_get_total(25 * 1024 * 1024 + 1)
    assert str(caught.value) == "Total size of request exceeds the limit of 25MB"


def test_bulk_json_value_words_its_error_as_miniflare() -> None:
    assert validation.bulk_json_value(b'{"a": 1}') == '{"a": 1}'
    with pytest.raises(InvalidRequest) as caught:
        validation.bulk_json_value(b"plain text")
    assert str(caught.value) == (
        "At least one of the requested keys corresponds to a non-json value"
    )


def test_bulk_write_at_both_limits_is_accepted() -> None:
    validation.bulk_write_size(10_000, 100_000_000)  # raises on failure


def test_bulk_write_of_10001_pairs_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.bulk_write_size(10_001, 10)
    message = str(caught.value)
    assert "10001" in message
    assert "10000" in message
    assert not isinstance(caught.value, ValueTooLarge)


def test_bulk_write_over_100_mb_is_rejected_as_too_large() -> None:
    with pytest.raises(ValueTooLarge) as caught:
        validation.bulk_write_size(3, 100_000_001)
    message = str(caught.value)
    assert "100000001" in message
    assert "100000000" in message


def test_bulk_delete_of_10000_keys_is_accepted() -> None:
    validation.bulk_delete_size(10_000)  # raises on failure


def test_bulk_delete_of_10001_keys_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.bulk_delete_size(10_001)
    message = str(caught.value)
    assert "10001" in message
    assert "10000" in message


# ---- titles -----------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", " ", "\t\n "])
def test_blank_title_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.title(raw)
    assert str(caught.value) == "Namespace title cannot be empty."


def test_title_of_512_bytes_is_accepted() -> None:
    assert validation.title("t" * 512) == "t" * 512


def test_title_of_513_bytes_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.title("t" * 513)
    assert str(caught.value) == "Namespace title length of 513 exceeds limit of 512."


def test_title_length_is_measured_in_utf8_bytes() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.title("é" * 257)
    assert str(caught.value) == "Namespace title length of 514 exceeds limit of 512."


# ---- JSON values (bulk get type json) ---------------------------------------


def test_json_value_returns_the_text_of_valid_json() -> None:
    assert validation.json_value(b"k", b'{"a": [1, 2]}') == '{"a": [1, 2]}'


@pytest.mark.parametrize("value", [b"{", b"NaN", b"", b"plain text"])
def test_json_value_that_does_not_parse_is_rejected_naming_the_key(value: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validation.json_value(b"my-key", value)
    assert str(caught.value) == 'The value of key "my-key" is not valid JSON.'


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("prefix=%FF", b"\xff"),
        ("a=1&prefix=%C3%A9+x&prefix=second", "é x".encode()),
        ("prefix=", b""),
        ("other=1", b""),
        ("", b""),
    ],
)
def test_query_bytes_are_what_the_escapes_encode(query: str, expected: bytes) -> None:
    assert validation.query_bytes(query, "prefix") == expected


def test_a_non_utf8_prefix_from_a_query_is_refused_as_on_grpc() -> None:
    with pytest.raises(InvalidRequest, match=r"Prefix must be valid UTF-8\."):
        validation.prefix(validation.query_bytes("prefix=%FF", "prefix"))
