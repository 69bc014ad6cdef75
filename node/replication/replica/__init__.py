"""The replica room: ``replica`` (the Replica facade), ``state`` (what it holds
and how it opens), ``staging`` (a batch of store writes), ``local_writes`` and
``remote_apply`` (a client's write and a peer's record), ``answers`` (digests,
deltas and pulls), ``auditing``, ``reads``, ``session_coverage`` (what a session
token names that is not readable here yet), ``sweeping`` (expiry and tombstone
GC), ``tombstone_runs`` (key intervals known to hold only tombstones, which
listings seek past), ``reserved_records``, ``namespace_titles`` (live
namespaces by title), ``snapshot_install``, ``backup_restore`` (a restored
backup starts a new cluster) and ``delta`` (records on the wire). No module
here imports the engine."""
