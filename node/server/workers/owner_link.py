"""A worker's link to its owner: one channel on the owner's private socket, one Batch stream.

Every write a worker serves (and every read its own view does not answer,
``secondary_reads``) goes to the owner as an operation on one Batch stream
(``rumor.client.batch_aio.AsyncBatcher``: calls made before the loop turns
share a frame), so the owner pays one step per frame, not one call per client
request. Other calls go over the same channel as they are
(``forwarding``).
"""

from __future__ import annotations

from typing import Any

import grpc.aio

from rumor.client.batch_aio import AsyncBatcher
from rumor.node.server.grpc.server import MAX_MESSAGE_BYTES
from rumor.v1 import kv_pb2

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


# While the owner is busy with earlier frames, a worker waits this long for more
# operations to share the next one: the owner's cost is per frame, not per operation.
GATHER_S = 0.001


def owner_grpc_target(socket_dir: str) -> str:
    return f"unix:{socket_dir}/grpc.sock"


def owner_http_path(socket_dir: str) -> str:
    return f"{socket_dir}/http.sock"


class OwnerLink:
    def __init__(self, socket_dir: str) -> None:
        self.channel = grpc.aio.insecure_channel(
            owner_grpc_target(socket_dir), options=CHANNEL_OPTIONS
        )
        self._batcher = AsyncBatcher(self.channel, (), gather_s=GATHER_S)

    async def call(self, field: str, request: Any, timeout: float | None) -> Any:
        """The owner's answer to one operation, or its ``grpc.RpcError``."""
        return await self._batcher.call(field, request, timeout)

    async def result(self, field: str, request: Any, timeout: float | None) -> kv_pb2.BatchResult:
        """The owner's whole ``BatchResult`` for one operation (its lag bound with it)."""
        return await self._batcher.result(field, request, timeout)

    async def close(self) -> None:
        await self._batcher.close()
        await self.channel.close(None)
