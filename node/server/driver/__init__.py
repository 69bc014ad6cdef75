"""The engine's driver room: ``engine_driver`` (the EngineDriver: feeds the
sans-I/O engine its inputs and carries out its outputs), ``tick_loop`` (when the
engine is ticked), ``client_waits`` (a client request waiting for replication),
``peer_transport`` (calls to peers), ``codec`` (engine messages to and from
protobuf), ``group_commit`` (one sync for many writes), ``notice_log``,
``disk_space``, ``clock`` and ``faults`` (userspace fault injection). It imports
no aiohttp and no service module."""
