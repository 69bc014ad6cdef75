"""The lab: real Rumor nodes under faults. ``harness`` (nodes, workload,
faults), ``processes``, ``netns``, ``scenario`` (scenarios/*.toml), ``history``,
``visibility``, ``checkers``, ``report`` and ``report_plots``."""
