"""``make bench``: run every ``bench/bench_*.py``, then write ``bench/results.md`` and its chart.

Each benchmark runs in its own process (one benchmark's exit or state cannot end or skew the
others) and records its figures through `bench.results.record`. A benchmark that fails or exits
non-zero fails the run; the figures of the others are still written, with the failure listed.

Run one benchmark alone with ``python -m bench.bench_session``, or a subset with
``python -m bench session s3_tail``.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from .results import RESULTS_FILE_ENV, Figure, format_number, load

BENCH_DIR = Path(__file__).parent
RESULTS_MD = BENCH_DIR / "results.md"
RESULTS_PNG = BENCH_DIR / "results.png"


def main(argv: list[str] | None = None) -> int:
    wanted = set(argv if argv is not None else sys.argv[1:])
    scripts = [s for s in sorted(BENCH_DIR.glob("bench_*.py")) if not wanted or s.stem.removeprefix("bench_") in wanted]
    failed: list[str] = []
    durations: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results_file = Path(tmp) / "figures.jsonl"
        results_file.touch()
        env = {**os.environ, RESULTS_FILE_ENV: str(results_file)}
        for script in scripts:
            print(f"\n== {script.stem} ==", flush=True)
            started = time.monotonic()
            result = subprocess.run([sys.executable, "-m", f"bench.{script.stem}"], env=env, check=False)
            durations[script.stem] = time.monotonic() - started
            if result.returncode != 0:
                failed.append(f"{script.stem} (exit {result.returncode})")
        figures = load(results_file)
    if not wanted:  # a partial run does not overwrite the full results
        RESULTS_MD.write_text(render_markdown(figures, failed, durations))
        draw_chart(figures, RESULTS_PNG)
        print(f"\nwrote {RESULTS_MD.relative_to(Path.cwd()) if RESULTS_MD.is_relative_to(Path.cwd()) else RESULTS_MD}"
              f" and {RESULTS_PNG.name} ({len(figures)} figures, {sum(durations.values()) / 60:.1f} min)")
    missed = [f for f in figures if f.met is False]
    if missed:
        print(f"targets missed: {', '.join(f.figure for f in missed)} (see {RESULTS_MD.name})")
    if failed:
        print(f"\nfailed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def machine() -> str:
    """The machine the figures were measured on, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))  # fmt: skip
        cpu = model
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))  # fmt: skip
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return (f"{os.cpu_count()} CPUs ({cpu}){memory}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")  # fmt: skip


def _cell(value: float | None, p95: float | None) -> str:
    if value is None:
        return "—"
    return format_number(value) + ("" if p95 is None else f" (p95 {format_number(p95)})")


def render_markdown(figures: list[Figure], failed: list[str], durations: dict[str, float]) -> str:
    """``bench/results.md``: every figure, this kit against the peer, with the machine and targets."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand. Every figure of a row was",
        "measured in the same run, on the same local AWS and the same functions. Times are medians,",
        "with the 95th percentile in parentheses where a figure was repeated. Ratio is kit ÷ peer.",
        "",
        f"- machine: {machine()}",
        f"- measured: {when}; pipes-lambda-kit {version('pipes-lambda-kit')}, peer dagster-aws "
        f"{version('dagster-aws')} `PipesLambdaClient`, dagster {version('dagster')}",
        f"- wall time of the whole run: {sum(durations.values()) / 60:.1f} min",
        "",
        "![kit against dagster-aws](results.png)",
        "",
        "| benchmark | figure | unit | this kit | peer (dagster-aws) | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        ratio = "—" if f.ratio is None else f"{f.ratio:.2f}"
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(f"| {f.benchmark.removeprefix('bench_')} | {f.figure} | {f.unit} | {_cell(f.kit, f.kit_p95)} | "
                     f"{_cell(f.peer, f.peer_p95)} | {ratio} | {f.target} | {met} |")  # fmt: skip
    if failed:
        lines += ["", f"**Failed benchmarks** (their figures are missing): {', '.join(failed)}"]
    lines += ["", "| benchmark | wall (s) |", "|---|---|"]
    lines += [f"| {name.removeprefix('bench_')} | {seconds:.0f} |" for name, seconds in durations.items()]
    return "\n".join(lines) + "\n"


def draw_chart(figures: list[Figure], path: Path) -> None:
    """The figures that have a peer, as kit ÷ peer (left: lower is better; right: higher is better)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [f for f in figures if f.ratio is not None]
    costs = [f for f in compared if not f.higher_is_better]
    gains = [f for f in compared if f.higher_is_better]
    panels = [(p, title) for p, title in ((costs, "time and cost: kit ÷ dagster-aws (lower is better)"),
                                          (gains, "delivered: kit ÷ dagster-aws (higher is better)")) if p]  # fmt: skip
    if not panels:
        return
    height = max(len(p) for p, _ in panels) * 0.45 + 1.5
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), height), squeeze=False)
    for ax, (rows, title) in zip(axes[0], panels, strict=True):
        labels = [_short(f.figure) for f in rows]
        ratios = [f.ratio or 0.0 for f in rows]
        better = [(r >= 1) if f.higher_is_better else (r <= 1) for f, r in zip(rows, ratios, strict=True)]
        bars = ax.barh(labels, ratios, color=["#2e7d32" if b else "#c62828" for b in better])
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        for bar, f in zip(bars, rows, strict=True):
            ax.annotate(f"{format_number(f.kit)} vs {format_number(f.peer or 0)} {f.unit}",
                        (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=7)  # fmt: skip
        ax.margins(x=0.5)
    fig.suptitle(f"pipes-lambda-kit against dagster-aws PipesLambdaClient — {machine()}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(text: str, width: int = 64) -> str:
    """``text`` within ``width`` characters, cut in the middle: figures differ at both ends."""
    if len(text) <= width:
        return text
    head = width // 2 - 1
    return text[:head] + "…" + text[-(width - head - 1) :]


if __name__ == "__main__":
    raise SystemExit(main())
