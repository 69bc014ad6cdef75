"""One ``/metrics`` for a node of several processes: expositions summed series by series.

A node with workers counts requests in each worker; the owner serves
``/metrics`` with its own series and every worker's added up, so a scrape sees
one node. Counters, histograms and summaries add; a ``_created`` timestamp
keeps the earliest; a gauge present in several processes adds (each process
reports its own share).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import utils as prometheus_utils
from prometheus_client.parser import text_string_to_metric_families

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def merged_exposition(texts: Iterable[str]) -> bytes:
    """The Prometheus text of every series in ``texts``, one sample per series."""
    families: dict[str, tuple[str, str, Series]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            _, _, series = families.setdefault(family.name, (family.type, family.documentation, {}))
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in series:
                    series[key] = sample.value
                elif sample.name.endswith("_created"):
                    series[key] = min(series[key], sample.value)
                else:
                    series[key] += sample.value
    lines: list[str] = []
    for name, (kind, documentation, series) in families.items():
        lines.append(f"# HELP {name} {_escape_help(documentation)}")
        lines.append(f"# TYPE {name} {kind}")
        for (sample_name, labels), value in series.items():
            shown = ",".join(f'{key}="{_escape_label(label)}"' for key, label in labels)
            lines.append(
                f"{sample_name}{{{shown}}} {_number(value)}"
                if shown
                else f"{sample_name} {_number(value)}"
            )
    return ("\n".join(lines) + "\n").encode()


def _number(value: float) -> str:
    shown: str = prometheus_utils.floatToGoString(value)  # type: ignore[no-untyped-call]
    return shown


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
