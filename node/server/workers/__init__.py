"""The workers room: every core serving clients, one owner keeping what must be single.

With ``--workers N`` the node runs N worker processes beside its owner
process. The workers share the node's client listeners (gRPC and HTTP, with
SO_REUSEPORT: the kernel spreads connections among them) and do the
per-request work — HTTP/2 and HTTP, protobuf, authentication, the REST API's
envelopes — and answer plain reads from their own RocksDB secondary instance.
The owner keeps the engine, RocksDB, the group commit, gossip and Watch; it
listens only on a private socket, and the workers hand it their writes and
other operations in batches over one Batch stream each.

Modules: ``ports`` (holding a port for the workers to share), ``owner_link``
(a worker's channel and batched stream to the owner), ``forwarding`` (calls
passed to the owner as they are: admin, peer, streams), ``owner_state`` (what
the owner publishes in shared memory for the workers' reads), ``catch_up``
(one catch-up shared by the reads that wait for it), ``secondary_reads`` (a
worker's view of the database), ``kv_proxy`` (a worker's KV service: plain
reads from the view, the rest batched to the owner), ``http_proxy``
(HTTP requests a worker passes on), ``supervisor`` (the owner starts the
workers, restarts one that dies, stops them) and ``worker`` (a worker
process's main).
"""
