"""The engine room: ``engine`` (the Engine and its contract), ``messages`` and
``envelopes``, ``components`` (the Component protocol and the Services every
component is built from), and one module per component: ``gossip`` with
``push_queues``, ``anti_entropy``, ``probing``, ``joining``, ``audit_rounds``,
``sweep_rounds`` and ``snapshot_join``; ``membership`` holds the member table,
``canaries`` the test-only switches, ``protocol_config`` every knob; ``build``
wires a replica, its membership and the engine for the node and the simulator
alike."""
