"""The lab: real Rumor nodes under faults. ``harness`` (nodes, workload,
faults of the shared ``FaultKind`` vocabulary, applied by ``fault_injector``),
``moving_clients`` (clients that pick a random node per call, with and without
sessions), ``processes``, ``netns``, ``scenario`` (scenarios/*.toml),
``history``, ``visibility``, ``checkers`` (a history adapted to
``rumor.experiments.properties``, judged there), ``report`` and ``report_plots``."""
