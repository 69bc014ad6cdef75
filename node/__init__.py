"""rumor.node: the Rumor server.

Layers, from pure to I/O (a lower layer never imports a higher one):
core (pure logic) → storage (RocksDB and memory stores) → replication (the
sans-I/O replica) → server (grpc.aio services) → config → app (wiring,
lifecycle) → cli (`rumor node`).
"""
