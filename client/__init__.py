"""rumor.client: the Python SDK for Rumor (sync and asyncio) and the `rumor` command.

    from rumor.client import Client

    with Client(["127.0.0.1:7401", "127.0.0.1:7402"]) as kv:
        ns = kv.namespace(kv.namespaces.create("SESSIONS").id)
        ns.put("k", "v", expiration_ttl=600, metadata={"owner": "ada"})
        ns.get("k")            # "v"

Sessions (``kv.session(token=None)``) read their own writes on any node.
See docs/sdk.md. This package never imports rumor.node.
"""

from rumor.client.aio import AsyncClient, AsyncKVNamespace
from rumor.client.connection import TLS
from rumor.client.models import (
    Change,
    KeyInfo,
    ListResult,
    NamespaceInfo,
    NamespacePage,
    ValueWithMetadata,
    WriteResult,
)
from rumor.client.namespaces import AsyncNamespaces, Namespaces
from rumor.client.session import Session
from rumor.client.sync import Client, KVNamespace

__all__ = [
    "TLS",
    "AsyncClient",
    "AsyncKVNamespace",
    "AsyncNamespaces",
    "Change",
    "Client",
    "KVNamespace",
    "KeyInfo",
    "ListResult",
    "NamespaceInfo",
    "NamespacePage",
    "Namespaces",
    "Session",
    "ValueWithMetadata",
    "WriteResult",
]
