"""A fan-out's wall time on AWS, on paper: which transport to choose at which N.

Not a measurement (nothing here calls AWS): a deterministic step simulation of N items of ``d``
seconds each, from Lambda's documented scaling and the assumptions below, each a parameter of `Aws`.
``python -m bench.model_fan_out`` prints the README's "Which transport at which N" table. It is not
one of ``make bench``'s benchmarks (``bench_*.py``: figures measured on the local AWS, in
``bench/results.md``): these figures are modelled, so they go to the README, with this command.

Documented by AWS (Lambda developer guide and quotas; checked 2026):
- scaling: each function adds at most 1,000 execution environments every 10 s, refilled
  continuously and never accumulated; an account's concurrency is 1,000 by default; Invoke requests
  are limited to 10 × that per second.
- an SQS event source mapping (standard mode) starts with 5 concurrent invokes and, while messages
  remain, adds up to 300 a minute, to 1,250 per mapping or its ``MaximumConcurrency`` (2–1,000).
- its provisioned mode (exclusive with ``MaximumConcurrency``): ``MinimumPollers`` ≥ 2 (default 2),
  ``MaximumPollers`` 200 by default; from AWS's launch material (the API reference gives a poller no
  concurrency): each poller runs up to 10 concurrent invokes, and the mapping scales by up to 1,000
  concurrent invokes a minute, to 20,000.
- ``SendMessageBatch`` carries 10 messages.
The kit (pipeskit/fan_out.py, pipeskit_lambda/session.py): invokes and ``SendMessageBatch`` calls go out
from 16 threads; with ``max_concurrency=None`` every item is sent before
the first poll; a batch's records run one after another in one invocation.
Assumed (in-region latencies, as the orchestrator waits for them): ``Invoke`` 30 ms,
``SendMessageBatch`` 25 ms. Left out: cold starts (every new environment's init, alike for both
transports), the fan-out's 0.5 s poll interval, and the pace of Lambda's own queue of asynchronous
events: here a free environment takes the next event at once, while AWS documents that an event
throttled at the function's concurrency waits 1 s to 5 min before its next try, so an invoke
fan-out much larger than that concurrency can do worse than modelled unless ``max_concurrency`` caps it.
"""

from __future__ import annotations

import functools
import heapq
import math
from dataclasses import dataclass, replace
from typing import Literal

ITEMS = (1_000, 10_000, 100_000)
DURATIONS_S = (0.1, 1.0, 10.0, 60.0)  # a no-op item, and 1 s, 10 s, 1 min of work
BURST, BURST_WINDOW_S = 1_000, 10.0  # environments a function may add per window
ESM_START, ESM_RAMP_PER_S, ESM_MAX = 5, 300 / 60, 1_250
POLLER_INVOKES, PROVISIONED_RAMP_PER_S, PROVISIONED_MAX = 10, 1_000 / 60, 20_000
TODAY_ORCHESTRATOR_S = 0.0058 + 0.020 / 10
"""The fan-out's orchestrator handles each ended item in one thread: 5.8 ms of CPU, Dagster's own
recording of its materialization included (bench_fan_out, bench/results.md), and a share of one S3 GET
per batch of ten items' ends (fetched side by side; assumed 20 ms each)."""
TIE = 1.1  # within 10 %, the work queue is preferred (see `recommend`)

Transport = Literal["invoke", "sqs"]


@dataclass(frozen=True)
class Aws:
    """A deployment and an orchestrator; the defaults are the kit's and its reference stack's.

    Attributes:
        concurrency: concurrency available to the function (the account's default, or its reserved).
        invoke_s / invoke_threads: one asynchronous ``Invoke``, and the fan-out's threads making them.
        send_batch_s / send_threads: one ``SendMessageBatch`` of 10, and how many go at once.
        batch_size: records per invocation of the queue's consumer (reference stack: 10).
        esm_max: the mapping's ``MaximumConcurrency`` (reference stack: 50; None: Lambda's 1,250).
        min_pollers / max_pollers: provisioned mode's pollers (min_pollers 0: standard mode).
        max_concurrency: the fan-out's cap on items in flight (None: all, the kit's default).
        orchestrator_item_s: the orchestrator's time per ended item, one after another (0: it keeps
            up; today's: `TODAY_ORCHESTRATOR_S`).
    """

    concurrency: int = 1_000
    invoke_s: float = 0.030
    invoke_threads: int = 16
    send_batch_s: float = 0.025
    send_threads: int = 16
    batch_size: int = 10
    esm_max: int | None = 50
    min_pollers: int = 0
    max_pollers: int = 200
    max_concurrency: int | None = None
    orchestrator_item_s: float = 0.0


STACK = Aws()
SCENARIOS: dict[str, tuple[Transport, Aws]] = {
    "invoke": ("invoke", STACK),
    "SQS, stack": ("sqs", STACK),  # the reference stack's mapping: batch 10, maximum concurrency 50
    "SQS, batch 1, max 1,000": ("sqs", replace(STACK, batch_size=1, esm_max=1_000)),
    "SQS provisioned, batch 1": ("sqs", replace(STACK, batch_size=1, min_pollers=2)),  # 2 to 200 pollers
}


def wall_s(
    n_items: int, item_s: float, transport: Transport = "invoke", aws: Aws = STACK,
    trace: list[tuple[float, int]] | None = None,
) -> float:  # fmt: skip
    """Seconds from the fan-out's start until its orchestrator has seen all ``n_items`` items end.

    ``trace``, when given, gets ``(time, invocations running)`` at every step.
    """
    invoke = transport == "invoke"
    if invoke:  # one Invoke per item, from the thread pool, within the Invoke request rate
        per_item = max(aws.invoke_s / aws.invoke_threads, 1 / (10 * aws.concurrency))
        cap, per_invocation, pollers, ramp = aws.concurrency, 1, 0.0, 0.0
    else:  # SendMessageBatch of 10; the mapping's concurrency ramps while messages wait
        per_item, per_invocation = aws.send_batch_s / 10 / aws.send_threads, aws.batch_size
        if aws.min_pollers:
            cap = min(aws.max_pollers * POLLER_INVOKES, PROVISIONED_MAX, aws.concurrency)
            pollers, ramp = float(aws.min_pollers * POLLER_INVOKES), PROVISIONED_RAMP_PER_S
        else:
            cap, pollers, ramp = min(aws.esm_max or ESM_MAX, aws.concurrency), float(ESM_START), ESM_RAMP_PER_S
    t = clock = 0.0  # the simulation's time; when the orchestrator's one thread is free again
    tokens = float(BURST)
    sent = taken = ended = seen = busy = environments = 0
    running: list[tuple[float, int, int]] = []  # (end, invocations, items)
    while True:
        dt = 0.05 if sent < n_items else max(0.05, item_s / 20)  # an SQS receive, or 1/20 of an item
        while running and running[0][0] <= t:
            _, invocations, items = heapq.heappop(running)
            busy, ended = busy - invocations, ended + items
        # the orchestrator: sends what it may, then reads what ended (as fan_out's loop does)
        clock = max(clock, t)
        room = n_items - sent if aws.max_concurrency is None else min(n_items - sent, aws.max_concurrency - sent + seen)
        if room > 0:
            n = min(room, int((t + dt - clock) / per_item))
            sent, clock = sent + n, clock + n * per_item
        if aws.orchestrator_item_s:
            n = max(0, min(ended - seen, math.ceil((t + dt - clock) / aws.orchestrator_item_s)))
            seen, clock = seen + n, clock + n * aws.orchestrator_item_s
        else:
            seen = ended
        if seen >= n_items:
            return max(t, clock)
        # Lambda: new environments within the burst rate; free ones take the waiting items
        backlog = sent - taken
        limit = cap if invoke else min(cap, int(pollers))
        grow = min(int(tokens), min(limit, busy + backlog) - environments)
        if grow > 0:
            environments, tokens = environments + grow, tokens - grow
        starts = min(min(limit, environments) - busy, backlog)  # each free consumer takes what waits
        if starts > 0:
            items = min(backlog, starts * per_invocation)
            size, larger = divmod(items, starts)  # spread evenly; a batch's records run one after another
            for count, records in ((larger, size + 1), (starts - larger, size)):
                if count and records:
                    heapq.heappush(running, (t + records * item_s, count, count * records))
            busy, taken = busy + starts, taken + items
        if trace is not None:
            trace.append((t, busy))
        if not invoke and sent > taken:  # messages still waiting: the mapping scales up
            pollers = min(float(cap), pollers + ramp * dt)
        tokens = min(BURST, tokens + BURST / BURST_WINDOW_S * dt)
        t += dt


@functools.cache
def walls(n_items: int, item_s: float) -> dict[str, float]:
    """`wall_s` of every setup of `SCENARIOS`."""
    return {name: wall_s(n_items, item_s, transport, aws) for name, (transport, aws) in SCENARIOS.items()}


def recommend(n_items: int, item_s: float) -> Transport:
    """``invoke`` when it is more than 10 % faster than the fastest work-queue setup of `SCENARIOS`, else
    ``sqs``: its dead-letter queue, and a following cost that does not grow with the invoke rate (invoked
    items are followed through their functions' REPORT lines, on the account's CloudWatch Logs budget)."""
    times = walls(n_items, item_s)
    queue = min(w for name, w in times.items() if SCENARIOS[name][0] == "sqs")
    return "invoke" if times["invoke"] * TIE < queue else "sqs"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min" if seconds < 7_200 else f"{seconds / 3_600:.3g} h"


def table() -> str:
    """The markdown table: wall time and items/s per N × item duration × setup, and the fastest."""
    lines = ["| items | item | " + " | ".join(SCENARIOS) + " | fastest (× the next) |",
             "|---:|---:|" + "---|" * (len(SCENARIOS) + 1)]  # fmt: skip
    for n in ITEMS:
        for d in DURATIONS_S:
            times = walls(n, d)
            best, second = sorted(times, key=times.__getitem__)[:2]
            cells = [f"{_duration(w)} · {n / w:,.0f}/s" for w in times.values()]
            margin = f"{best} ({times[second] / times[best]:.2f}×)"
            lines.append(f"| {n:,} | {d:g} s | " + " | ".join(cells) + f" | {margin} |")
    return "\n".join(lines)


def recommendations() -> list[str]:
    """A line per N: the transport per item duration (× = the best queue setup's time ÷ invoke's)."""
    lines = []
    for n in ITEMS:
        best = {d: min(w for k, w in walls(n, d).items() if k != "invoke") / walls(n, d)["invoke"] for d in DURATIONS_S}
        stack = [walls(n, d)["SQS, stack"] / walls(n, d)["invoke"] for d in DURATIONS_S]
        picks = ", ".join(f"{d:g} s → **{recommend(n, d)}** ({best[d]:.2f}×)" for d in DURATIONS_S)
        lines.append(f"- {n:,} items: {picks}; the stack's queue takes {min(stack):.1f}–{max(stack):.0f}× invoke's")
    today = replace(STACK, orchestrator_item_s=TODAY_ORCHESTRATOR_S)
    walls_today = ", ".join(f"{n:,} in {_duration(wall_s(n, 1.0, 'invoke', today))} (invoke) or "
                            f"{_duration(wall_s(n, 1.0, 'sqs', today))} (stack's queue)" for n in ITEMS)  # fmt: skip
    lines.append(f"- today's orchestrator ({TODAY_ORCHESTRATOR_S * 1000:.1f} ms per ended item, one at a time), "
                 f"items of 1 s: {walls_today}")  # fmt: skip
    return lines


if __name__ == "__main__":
    print(table(), "", *recommendations(), sep="\n")
