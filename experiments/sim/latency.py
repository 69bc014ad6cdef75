"""One-way message latency: distributions parsed from specs such as ``uniform:1:5``."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

_LATENCY_FORMS = "fixed:N, uniform:A:B, exp:MEAN or normal:MEAN:SD (milliseconds)"
_LATENCY_ARITY = {"fixed": 1, "uniform": 2, "exp": 1, "normal": 2}


@dataclass(frozen=True, slots=True)
class LatencyDistribution:
    """One-way message latency in ms, parsed from a spec such as ``uniform:1:5``.

    ``fixed:N`` always N; ``uniform:A:B`` uniform in [A, B]; ``exp:MEAN``
    exponential with that mean; ``normal:MEAN:SD`` normal, clipped at 0.
    """

    kind: str
    parameters: tuple[float, ...]

    @classmethod
    def parse(cls, spec: str) -> LatencyDistribution:
        """Parse ``spec``; raises ValueError saying what is wrong and what is expected."""

        def refuse(problem: str) -> ValueError:
            return ValueError(f"latency spec {spec!r}: {problem}; expected {_LATENCY_FORMS}")

        if not isinstance(spec, str) or not spec.strip():
            raise refuse("it is empty")
        kind, *raw = (part.strip() for part in spec.strip().split(":"))
        kind = kind.lower()
        arity = _LATENCY_ARITY.get(kind)
        if arity is None:
            raise refuse(f"unknown distribution {kind!r}")
        if len(raw) != arity:
            raise refuse(f"{kind} takes {arity} number(s), got {len(raw)}")
        try:
            parameters = tuple(float(part) for part in raw)
        except ValueError:
            raise refuse(f"{':'.join(raw)!r} are not all numbers") from None
        if not all(math.isfinite(p) and p >= 0 for p in parameters):
            raise refuse("every number must be finite and >= 0")
        if kind == "uniform" and parameters[0] > parameters[1]:
            raise refuse("uniform:A:B needs A <= B")
        if kind == "exp" and parameters[0] == 0:
            raise refuse("exp:MEAN needs MEAN > 0 (or use fixed:0)")
        return cls(kind, parameters)

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        """A function drawing one latency (ms, >= 0) from ``rng`` per call."""
        if self.kind == "fixed":
            value = self.parameters[0]
            return lambda: value
        if self.kind == "uniform":
            low, high = self.parameters
            return lambda: rng.uniform(low, high)
        if self.kind == "exp":
            rate = 1.0 / self.parameters[0]
            return lambda: rng.expovariate(rate)
        mean, deviation = self.parameters
        return lambda: max(0.0, rng.gauss(mean, deviation))

    def __str__(self) -> str:
        return ":".join([self.kind, *(f"{p:g}" for p in self.parameters)])


def parse_latency(spec: str) -> LatencyDistribution:
    """``LatencyDistribution.parse``: raises ValueError on anything but a valid spec."""
    return LatencyDistribution.parse(spec)
