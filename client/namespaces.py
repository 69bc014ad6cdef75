"""``client.namespaces``: create, list, get, rename and delete namespaces (sync and asyncio).

Each method is one call described in ``calls``, run by the client that owns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rumor.client import calls
from rumor.client.models import NamespaceInfo, NamespacePage

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
        """Every namespace, in id order (read a page of 1,000 at a time)."""
        namespaces: list[NamespaceInfo] = []
        cursor = None
        while True:
            page = self.list_page(limit=calls.NAMESPACE_PAGE, cursor=cursor)
            namespaces += page.namespaces
            if page.cursor is None:
                return namespaces
            cursor = page.cursor

    def list_page(
        self, limit: int = calls.NAMESPACE_PAGE, cursor: str | None = None
    ) -> NamespacePage:
        """One page of namespaces in id order (``limit`` 1..1000), after ``cursor``:
        ``NamespacePage(namespaces, list_complete, cursor)``."""
        return self._client.run(calls.list_namespaces(limit, cursor))

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
        """Every namespace, in id order (read a page of 1,000 at a time)."""
        namespaces: list[NamespaceInfo] = []
        cursor = None
        while True:
            page = await self.list_page(limit=calls.NAMESPACE_PAGE, cursor=cursor)
            namespaces += page.namespaces
            if page.cursor is None:
                return namespaces
            cursor = page.cursor

    async def list_page(
        self, limit: int = calls.NAMESPACE_PAGE, cursor: str | None = None
    ) -> NamespacePage:
        """One page of namespaces in id order (``limit`` 1..1000), after ``cursor``:
        ``NamespacePage(namespaces, list_complete, cursor)``."""
        return await self._client.run(calls.list_namespaces(limit, cursor))

    async def get(self, namespace_id: str) -> NamespaceInfo:
        """One namespace; raises NamespaceNotFoundError if there is none with this id."""
        return await self._client.run(calls.get_namespace(namespace_id))

    async def rename(self, namespace_id: str, title: str) -> NamespaceInfo:
        """Give a namespace a new title."""
        return await self._client.run(calls.rename_namespace(namespace_id, title))

    async def delete(self, namespace_id: str) -> None:
        """Delete a namespace and every key in it."""
        await self._client.run(calls.delete_namespace(namespace_id))
