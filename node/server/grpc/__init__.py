"""The gRPC room: the grpc.aio server (``server``), the call wrapper every
service shares (``rpc``) and one module per service: ``kv_service``,
``admin_service``, ``faults_service``, ``replication_service``; ``bulk_put_request``
reads a BulkPut request once."""
