"""The audit trail's file (rumor.node.server.audit.AuditLog), on a temporary directory.

- each event is one JSON object a line, with its time and fields, flushed at once;
- the file is created 0600; a file moved away (log rotation) is followed by a new one;
- without a path, events go to the node's log only and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from rumor.node.server.audit import AuditLog


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_are_json_lines_flushed_as_they_happen(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))
    try:
        audit.record("refused", token="tok-0123456789ab", operation="Put", namespaces=["n"])
        (entry,) = _lines(path)  # readable before close: flushed
        assert entry["event"] == "refused"
        assert entry["token"] == "tok-0123456789ab"
        assert entry["namespaces"] == ["n"]
        assert isinstance(entry["time"], float)
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        audit.close()


def test_a_rotated_file_is_followed_by_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))
    try:
        audit.record("namespace.create", token="open", namespace="a")
        path.rename(tmp_path / "audit.jsonl.1")
        audit.record("namespace.delete", token="open", namespace="a")
        assert [e["event"] for e in _lines(tmp_path / "audit.jsonl.1")] == ["namespace.create"]
        assert [e["event"] for e in _lines(path)] == ["namespace.delete"]
    finally:
        audit.close()


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    audit = AuditLog("")
    audit.record("admin.call", token="cluster-secret", method="Status", outcome="OK")
    audit.close()
    assert list(tmp_path.iterdir()) == []
