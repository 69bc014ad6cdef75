"""Real node processes for integration tests (see rumor.experiments.lab.processes)."""

from __future__ import annotations

from rumor.experiments.lab.processes import NodeProcess, poll
from rumor.v1 import kv_pb2

__all__ = ["NodeProcess", "create_namespace", "poll"]


def create_namespace(node: NodeProcess, title: str) -> str:
    return str(node.kv.CreateNamespace(kv_pb2.CreateNamespaceRequest(title=title)).id)
