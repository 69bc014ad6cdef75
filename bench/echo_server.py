"""The put/get baseline: a bare grpc.aio server answering KV Put and Get with fixed messages.

It decodes each request and answers with a response of the same shape and size
as a node's (a version, a seq and an expiration for Put; the 100-byte value and
its version for Get), so the client, the messages and gRPC are the same and
only Rumor's own work is missing. ``python -m rumor.bench.echo_server`` prints
``{"listen": "127.0.0.1:PORT"}`` once serving and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

import grpc

from rumor.v1 import kv_pb2

NAMESPACE_ID = "0" * 32


def handlers(value_bytes: int) -> grpc.GenericRpcHandler[Any, Any]:
    version = kv_pb2.Version(hlc=(1 << 62) + 12345, origin=0x1234_5678_9ABC_DEF0)
    put_answer = kv_pb2.PutResponse(version=version, seq=123_456, expiration=0)
    get_answer = kv_pb2.GetResponse(found=True, value=b"v" * value_bytes, version=version)
    namespace = kv_pb2.Namespace(id=NAMESPACE_ID, title="bench")

    async def put(request: kv_pb2.PutRequest, context: Any) -> kv_pb2.PutResponse:
        return put_answer

    async def get(request: kv_pb2.GetRequest, context: Any) -> kv_pb2.GetResponse:
        return get_answer

    async def create(request: Any, context: Any) -> kv_pb2.Namespace:
        return namespace

    def unary(call: Any, request: Any, response: Any) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )

    return grpc.method_handlers_generic_handler(
        "rumor.v1.KV",
        {
            "Put": unary(put, kv_pb2.PutRequest, kv_pb2.PutResponse),
            "Get": unary(get, kv_pb2.GetRequest, kv_pb2.GetResponse),
            "CreateNamespace": unary(create, kv_pb2.CreateNamespaceRequest, kv_pb2.Namespace),
        },
    )


async def serve(listen: str, value_bytes: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handlers(value_bytes),))
    port = server.add_insecure_port(listen)
    await server.start()
    host = listen.rsplit(":", 1)[0]
    print(json.dumps({"listen": f"{host}:{port}"}), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--value-bytes", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.value_bytes))
    sys.exit(0)


if __name__ == "__main__":
    main()
