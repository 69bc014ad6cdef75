"""What the adversarial suite measures of a node under attack: memory, writes, secrets.

Each module of tests/adversarial starts one node (or one small cluster) and
asserts three things of every attack: the node stays responsive (another
client's Get within a stated bound), its memory (RSS, from /proc) stays under
a stated bound, and nothing rejected is written (audit digest and record count
unchanged).
"""

from __future__ import annotations

import os
from pathlib import Path

from rumor.v1 import admin_pb2, admin_pb2_grpc
from tests.support.nodes import NodeProcess

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(node: NodeProcess) -> int:
    """Resident memory of the node process, from /proc."""
    assert node.process is not None
    fields = Path(f"/proc/{node.process.pid}/statm").read_text().split()
    return int(fields[1]) * PAGE


def write_secret(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def digest(node: NodeProcess, metadata: tuple[tuple[str, str], ...] = ()) -> tuple[int, int]:
    """(audit digest, records held): unchanged when nothing was written."""
    stub = admin_pb2_grpc.AdminStub(node.channel)
    status: admin_pb2.StatusResponse = stub.Status(admin_pb2.StatusRequest(), metadata=metadata)
    return status.audit_digest, int(status.records_held)
