"""The web console room: ``app`` (routes and pages), ``feed`` (the live event
stream), ``peers`` (what other members say), ``experiments``, ``files`` and
``markdown`` (experiment reports), ``assets/`` (plain HTML, CSS and JavaScript).
It may use the HTTP room; the HTTP room never uses it."""
