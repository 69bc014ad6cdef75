"""rumor.node.server: the node's I/O drivers — grpc.aio services, group commit, clock."""
