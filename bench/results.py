"""Benchmark figures: each benchmark records its figures here; ``make bench`` gathers them.

A figure is one measured quantity for this kit and, where there is a fair one, for dagster-aws's
client (the peer), measured in the same run. `record` prints the figure and, when the runner set
``BENCH_RESULTS_FILE``, appends it there as one JSON line; the runner (``python -m bench``) then
writes ``bench/results.md`` and the chart from all of them.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass
from typing import Any

RESULTS_FILE_ENV = "BENCH_RESULTS_FILE"


@dataclass(frozen=True)
class Figure:
    """One measured figure.

    Attributes:
        benchmark: the benchmark module that measured it.
        figure: what was measured.
        unit: its unit ("ms", "s", "%", "bytes", "calls", …).
        kit: this kit's value (a median where repeated).
        peer: dagster-aws's value from the same run, where there is a fair peer.
        kit_p95 / peer_p95: 95th percentiles, where repeated.
        target: the target, in words ("≤ 0.95 × peer", "≤ 1 s", "100 %").
        met: whether the target was met (None: no target).
        higher_is_better: for the chart (a delivery rate, not a time).
    """

    benchmark: str
    figure: str
    unit: str
    kit: float
    peer: float | None = None
    kit_p95: float | None = None
    peer_p95: float | None = None
    target: str = ""
    met: bool | None = None
    higher_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        """kit / peer, where both exist and the peer is not zero."""
        if self.peer is None or not self.peer:
            return None
        return self.kit / self.peer


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``samples`` (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def median_p95(samples: list[float]) -> tuple[float, float]:
    """(median, p95) of ``samples``."""
    return statistics.median(samples), percentile(samples, 0.95)


def record(benchmark: str, figure: str, unit: str, kit: float, **fields: Any) -> Figure:
    """Record one figure: print it and append it to the run's results file (see module docs)."""
    result = Figure(benchmark=benchmark, figure=figure, unit=unit, kit=kit, **fields)
    peer = "" if result.peer is None else f"  peer {format_number(result.peer)}"
    p95 = "" if result.kit_p95 is None else f" (p95 {format_number(result.kit_p95)})"
    verdict = "" if result.met is None else ("  target met" if result.met else "  TARGET MISSED")
    target = f"  [{result.target}]" if result.target else ""
    print(f"  {figure}: kit {format_number(kit)}{p95}{peer} {unit}{target}{verdict}", flush=True)
    path = os.environ.get(RESULTS_FILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(result)) + "\n")
    return result


def load(path: str | os.PathLike[str]) -> list[Figure]:
    """The figures recorded in ``path``."""
    with open(path, encoding="utf-8") as lines:
        return [Figure(**json.loads(line)) for line in lines if line.strip()]


def format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3g}"
