"""Rumor's benchmarks: each measures Rumor against a same-run baseline (``rumor bench``)."""
