"""The fan-out model on paper (bench/model_fan_out.py): its figures keep to Lambda's documented scaling."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.model_fan_out import (
    BURST,
    BURST_WINDOW_S,
    ESM_RAMP_PER_S,
    ESM_START,
    POLLER_INVOKES,
    PROVISIONED_RAMP_PER_S,
    SCENARIOS,
    STACK,
    TIE,
    Transport,
    recommend,
    recommendations,
    table,
    wall_s,
)
from infra.constants import PROJECT_DIR

QUEUE = replace(STACK, batch_size=1, esm_max=1_000)  # standard mode, up to the account's concurrency
PROVISIONED = replace(STACK, batch_size=1, min_pollers=2)
STEP_S = 0.05  # the model's step while items are being sent


def running(n_items: int, item_s: float, transport: Transport, aws=STACK) -> list[tuple[float, int]]:
    trace: list[tuple[float, int]] = []
    wall_s(n_items, item_s, transport, aws, trace=trace)
    return trace


@pytest.mark.parametrize("item_s", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("setup", SCENARIOS)
def test_more_items_never_finish_sooner(setup: str, item_s: float) -> None:
    transport, aws = SCENARIOS[setup]
    counts = [1, 2, 5, 9, 10, 11, 49, 50, 51, 200, 999, 1_000, 1_001, 3_000]
    times = [wall_s(n, item_s, transport, aws) for n in counts]
    assert times == sorted(times), dict(zip(counts, times, strict=True))


@pytest.mark.parametrize("setup", SCENARIOS)
def test_longer_items_never_finish_sooner(setup: str) -> None:
    transport, aws = SCENARIOS[setup]
    times = [wall_s(2_000, d, transport, aws) for d in (0.1, 0.5, 1.0, 5.0, 10.0, 60.0)]
    assert times == sorted(times)


def test_a_few_slow_items_are_faster_invoked_than_queued_while_the_mapping_ramps_up() -> None:
    """1,000 items of 10 s: invoked, all run within the orchestrator's ~2 s of Invokes; through the queue,
    the mapping starts at 5 and adds 5 a second, so N·d ≤ ∫(5 + 5t)dt bounds the wall from below."""
    invoke = wall_s(1_000, 10.0, "invoke")
    assert invoke <= 10.0 + 1_000 * 0.030 / 16 + 2 * STEP_S
    ramp_bound = next(w for w in range(1, 1_000) if ESM_START * w + ESM_RAMP_PER_S * w * w / 2 >= 1_000 * 10.0)
    assert wall_s(1_000, 10.0, "sqs", QUEUE) >= ramp_bound
    assert all(wall_s(1_000, 10.0, "sqs", aws) >= 2.5 * invoke for transport, aws in SCENARIOS.values()
               if transport == "sqs")  # fmt: skip


def test_the_mapping_ramps_as_documented_and_no_faster() -> None:
    standard = running(10_000, 60.0, "sqs", QUEUE)
    assert all(busy <= ESM_START + ESM_RAMP_PER_S * t + 1e-6 for t, busy in standard)
    assert max(busy for _, busy in standard) == 1_000  # it gets there: the account's concurrency
    provisioned = running(10_000, 60.0, "sqs", PROVISIONED)
    assert all(busy <= 2 * POLLER_INVOKES + PROVISIONED_RAMP_PER_S * t + 1e-6 for t, busy in provisioned)
    first_full = next(t for t, busy in provisioned if busy == 1_000)
    assert first_full < next(t for t, busy in standard if busy == 1_000) / 2  # provisioned ramps faster


def test_invokes_scale_within_the_burst_rate() -> None:
    big = replace(STACK, concurrency=5_000)
    trace = running(20_000, 60.0, "invoke", big)
    assert all(busy <= BURST + BURST / BURST_WINDOW_S * t + 1e-6 for t, busy in trace)
    assert max(busy for _, busy in trace) == 5_000


@pytest.mark.parametrize("transport", ["invoke", "sqs"])
def test_the_concurrency_caps_both_transports(transport: Transport) -> None:
    aws = replace(QUEUE, concurrency=200)
    assert max(busy for _, busy in running(2_000, 10.0, transport, aws)) == 200
    assert wall_s(2_000, 10.0, transport, aws) >= 2_000 * 10.0 / 200


def test_a_batchs_records_run_one_after_another() -> None:
    """The reference stack's queue: 1,000 items of 60 s are 100 batches of 10 min, 50 at a time."""
    assert 2 * 10 * 60.0 <= wall_s(1_000, 60.0, "sqs") <= 2 * 10 * 60.0 + 60.0


def test_max_concurrency_caps_the_items_in_flight() -> None:
    aws = replace(STACK, max_concurrency=100)
    assert max(busy for _, busy in running(1_000, 1.0, "invoke", aws)) == 100
    assert wall_s(1_000, 1.0, "invoke", aws) >= 1_000 * 1.0 / 100


def test_an_orchestrator_reading_one_item_at_a_time_bounds_the_wall() -> None:
    slow = replace(STACK, orchestrator_item_s=0.05)
    for transport in ("invoke", "sqs"):
        assert wall_s(2_000, 0.1, transport, slow) >= max(2_000 * 0.05, wall_s(2_000, 0.1, transport))


@pytest.mark.parametrize(("n_items", "item_s"), [(1_000, 0.1), (1_000, 10.0), (10_000, 1.0), (10_000, 60.0),
                                                 (100_000, 1.0), (100_000, 60.0)])  # fmt: skip
def test_recommend_follows_the_wall_times(n_items: int, item_s: float) -> None:
    invoke = wall_s(n_items, item_s, "invoke")
    queue = min(wall_s(n_items, item_s, transport, aws) for transport, aws in SCENARIOS.values() if transport == "sqs")
    assert recommend(n_items, item_s) == ("invoke" if invoke * TIE < queue else "sqs")


def test_the_readme_shows_the_models_table_and_recommendations() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    for shown in (table(), *recommendations()):
        assert shown in readme, f"regenerate the README's figures (python -m bench.model_fan_out): {shown[:80]}"
