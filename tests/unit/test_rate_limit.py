"""The CloudWatch Logs read budget: one sliding window for the threads and processes that share it."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from pipeskit import InvocationLogReader, LambdaInvocation, LogsReaderSettings, RateBudget, SettingsError
from pipeskit.local.testing import busiest_second, counting_budget
from pipeskit.rate_limit import budget_rates, shared_logs_budget


def acquire_in_threads(budget: RateBudget, threads: int, each: int) -> list[float]:
    """``threads`` threads taking ``each`` tokens at once; when each token was had."""
    times: list[float] = []
    go = threading.Barrier(threads)

    def take() -> None:
        go.wait()
        for _ in range(each):
            budget.acquire()
            times.append(time.time())

    workers = [threading.Thread(target=take) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return times


def _process(path: str, rate: float, go: Any, out: Any) -> None:
    """A separate process with its own budget object on the shared file (spawned: nothing inherited)."""
    budget = RateBudget(rate, path=path)
    out.put(("ready", 0.0))
    go.wait()
    for at in acquire_in_threads(budget, threads=2, each=2):
        out.put(("took", at))


@pytest.mark.parametrize("shared", [True, False], ids=["host", "process"])
def test_threads_never_exceed_the_rate_in_any_second(tmp_path: Path, shared: bool) -> None:
    budget = RateBudget(5, path=tmp_path / "budget.sqlite" if shared else None)
    started = time.monotonic()
    times = acquire_in_threads(budget, threads=4, each=2)
    assert busiest_second(times) == 5
    assert time.monotonic() - started >= 1.0, "the three over the budget waited for the next second"


def test_separate_processes_sharing_a_file_share_one_budget(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    path = str(tmp_path / "budget.sqlite")
    processes = [context.Process(target=_process, args=(path, 5.0, go, out)) for _ in range(2)]
    for process in processes:
        process.start()
    try:
        assert [out.get(timeout=60)[0] for _ in processes] == ["ready", "ready"]
        go.set()
        times = [out.get(timeout=30)[1] for _ in range(8)]
    finally:
        for process in processes:
            process.join(timeout=30)
    assert all(process.exitcode == 0 for process in processes)
    # 8 acquisitions at once, 5 per second for both processes together: 5 now, 3 a second later
    assert busiest_second(times) == 5
    assert max(times) - min(times) >= 1.0


def test_acquire_waits_for_the_window_instead_of_failing(tmp_path: Path) -> None:
    budget = RateBudget(3, path=tmp_path / "budget.sqlite")
    waits = [budget.acquire() for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.9 < waits[3] < 1.5, waits


def test_the_window_holds_the_rate_rounded_down_with_a_guard() -> None:
    assert [(r.limit, r.interval) for r in budget_rates(4)] == [(4, 1050)]
    assert [(r.limit, r.interval) for r in budget_rates(4.9)] == [(4, 1050)]
    assert [(r.limit, r.interval) for r in budget_rates(0.5)] == [(1, 2050)]
    assert [(r.limit, r.interval) for r in budget_rates(20, burst=1)] == [(1, 50), (20, 1050)]
    with pytest.raises(ValueError):
        RateBudget(0)


def test_an_unusable_budget_dir_is_refused_naming_the_setting(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(SettingsError) as refused:
        shared_logs_budget(4, scope="host", directory=not_a_dir, key="us-east-1")
    message = str(refused.value)
    assert f"PIPESKIT_LOGS_BUDGET_DIR={str(not_a_dir)!r}" in message and "PIPESKIT_LOGS_BUDGET_SCOPE=process" in message
    settings = LogsReaderSettings(logs_budget_dir=not_a_dir)
    reader = InvocationLogReader(logs_client=_client("us-east-1"), settings=settings)
    with pytest.raises(SettingsError, match="PIPESKIT_LOGS_BUDGET_DIR"):
        reader.budget  # noqa: B018


def _client(region: str, endpoint: str = "https://logs.example") -> Any:
    return SimpleNamespace(meta=SimpleNamespace(region_name=region, endpoint_url=f"{endpoint}/{region}"))


def test_readers_share_a_host_budget_per_region_and_endpoint(tmp_path: Path) -> None:
    def reader(region: str, **settings: Any) -> InvocationLogReader:
        return InvocationLogReader(
            logs_client=_client(region), settings=LogsReaderSettings(logs_budget_dir=tmp_path, **settings)
        )

    east = reader("us-east-1").budget
    assert east is reader("us-east-1").budget
    assert east.path is not None and east.path.parent == tmp_path and east.path.exists()
    assert reader("eu-west-1").budget.path != east.path
    in_process = reader("us-east-1", logs_budget_scope="process").budget
    assert in_process.path is None and in_process is not east


def test_budget_scope_and_dir_come_from_the_environment(tmp_path: Path) -> None:
    settings = LogsReaderSettings.from_env(
        {"PIPESKIT_LOGS_BUDGET_SCOPE": "process", "PIPESKIT_LOGS_BUDGET_DIR": str(tmp_path)}
    )
    assert (settings.logs_budget_scope, settings.logs_budget_dir) == ("process", tmp_path)
    assert LogsReaderSettings().logs_budget_scope == "host"
    with pytest.raises(SettingsError, match="PIPESKIT_LOGS_BUDGET_SCOPE='everywhere'"):
        LogsReaderSettings.from_env({"PIPESKIT_LOGS_BUDGET_SCOPE": "everywhere"})


def test_each_read_request_takes_a_token_botocore_retries_included(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    logs = boto3.client(
        "logs", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",  # nothing listens: refused at once
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )  # fmt: skip
    attempts: list[str] = []
    logs.meta.events.register("before-send.logs", lambda **_: attempts.append("sent"))
    budget = counting_budget()
    reader = InvocationLogReader(logs_client=logs, budget=budget)
    invocation = LambdaInvocation(function_name="fn", request_id="rid", payload=b"", started_ms=1_700_000_000_000)
    with pytest.raises(EndpointConnectionError):
        next(reader.lines("/aws/lambda/fn", "stream", invocation))
    assert len(attempts) >= 3 and budget.taken == len(attempts), "CloudWatch counts every attempt against the quota"
