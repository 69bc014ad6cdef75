"""``client.namespaces``: create, list, get, rename and delete namespaces (sync and asyncio).

Each method is one call described in ``calls``, run by the client that owns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rumor.client import calls
from rumor.client.models import NamespaceInfo

if TYPE_CHECKING:
    from rumor.client.aio import AsyncClient
    from rumor.client.sync import Client


class Namespaces:
    """``client.namespaces``: create, list, get, rename and delete namespaces."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, title: str) -> NamespaceInfo:
        """Create a namespace; raises NamespaceExistsError if the title is taken. Not retried."""
        return self._client.run(calls.create_namespace(title))

    def list(self) -> list[NamespaceInfo]:
        """Every namespace."""
        return self._client.run(calls.list_namespaces())

    def get(self, namespace_id: str) -> NamespaceInfo:
        """One namespace; raises NamespaceNotFoundError if there is none with this id."""
        return self._client.run(calls.get_namespace(namespace_id))

    def rename(self, namespace_id: str, title: str) -> NamespaceInfo:
        """Give a namespace a new title."""
        return self._client.run(calls.rename_namespace(namespace_id, title))

    def delete(self, namespace_id: str) -> None:
        """Delete a namespace and every key in it."""
        self._client.run(calls.delete_namespace(namespace_id))


class AsyncNamespaces:
    """``client.namespaces``: create, list, get, rename and delete namespaces."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, title: str) -> NamespaceInfo:
        """Create a namespace; raises NamespaceExistsError if the title is taken. Not retried."""
        return await self._client.run(calls.create_namespace(title))

    async def list(self) -> list[NamespaceInfo]:
        """Every namespace."""
        return await self._client.run(calls.list_namespaces())

    async def get(self, namespace_id: str) -> NamespaceInfo:
        """One namespace; raises NamespaceNotFoundError if there is none with this id."""
        return await self._client.run(calls.get_namespace(namespace_id))

    async def rename(self, namespace_id: str, title: str) -> NamespaceInfo:
        """Give a namespace a new title."""
        return await self._client.run(calls.rename_namespace(namespace_id, title))

    async def delete(self, namespace_id: str) -> None:
        """Delete a namespace and every key in it."""
        await self._client.run(calls.delete_namespace(namespace_id))
