"""Namespace ids: the raw bytes of a well-formed id, remembered or not, the same."""

from __future__ import annotations

from rumor.node.core.namespaces import RESERVED_NAMESPACE, cached_id_bytes, id_bytes


def test_the_cached_conversion_answers_as_the_plain_one() -> None:
    for namespace_id in ["ab" * 16, "AB" * 16, "ab" * 15, "", RESERVED_NAMESPACE.hex(), "zz" * 16]:
        assert cached_id_bytes(namespace_id) == id_bytes(namespace_id)
        assert cached_id_bytes(namespace_id) == id_bytes(namespace_id)  # remembered
    assert cached_id_bytes("0f" * 16) == bytes.fromhex("0f" * 16)
