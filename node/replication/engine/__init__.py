"""The engine room: ``engine`` (the Engine and its contract), ``messages`` and
``envelopes``, and one module per component: ``gossip`` with ``push_queues``,
``anti_entropy``, ``probing``, ``membership``, ``joining``, ``audit_rounds``,
``sweep_rounds`` and ``snapshot_join``; ``protocol_config`` holds every knob;
``build`` wires a replica, its membership and the engine for the node and the
simulator alike."""
