"""`pipeskit cdk` and `CdkCli`: which CDK CLI runs, the kit's pinned one installed once into its cache.

npm is not the kit's: a fake `npm` on PATH (a script recording its arguments and laying out what
`npm ci` would) stands in for it wherever the test is about the kit's own logic. The real install
from the npm registry is tests/cdk/test_cdk_cli_install.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from infra.constants import PROJECT_DIR
from pipeskit.cdk_cli import CdkCli, CdkCliError, install_toolchain, pinned_toolchain
from pipeskit.cli import main

PIN = pinned_toolchain()


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_npm(bin_dir: Path, *, node_version: str = PIN.node_version, fail: str = "", delay_s: float = 0) -> Path:
    """An `npm` recording each call (its directory and arguments) in ``bin_dir/npm.calls``; its ``ci``
    lays out node_modules/.bin with a `node` answering ``node_version`` and a `cdk` echoing its arguments."""
    calls = bin_dir / "npm.calls"
    script = f"""#!/bin/sh
echo "$PWD $*" >> {calls}
sleep {delay_s}
if [ -n "{fail}" ]; then echo "{fail}" >&2; exit 1; fi
test -f package-lock.json || exit 9
mkdir -p node_modules/.bin
printf '#!/bin/sh\\necho v{node_version}\\n' > node_modules/.bin/node
printf '#!/bin/sh\\necho "kit cdk $*"\\n' > node_modules/.bin/cdk
chmod +x node_modules/.bin/node node_modules/.bin/cdk
"""
    _executable(bin_dir / "npm", script)
    return calls


@pytest.fixture
def npm_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake npm first on PATH, a kit cache of the test's own, no PIPESKIT_CDK."""
    bin_dir = tmp_path / "bin"
    calls = fake_npm(bin_dir)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    monkeypatch.setenv("PIPESKIT_CDK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PIPESKIT_CDK", raising=False)
    return calls


def _lines(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_the_shipped_pins_are_the_repositorys_package_json_and_lockfile() -> None:
    shipped = dict(PIN.files)
    for name in ("package.json", "package-lock.json"):
        assert json.loads(shipped[name]) == json.loads((PROJECT_DIR / name).read_text()), (
            f"pipeskit/cdk-toolchain/{name} and the repository's {name} differ: pin the CDK CLI and Node.js in "
            "both (copy the one you changed over the other)"
        )
    root = json.loads((PROJECT_DIR / "package.json").read_text())["devDependencies"]
    assert (PIN.cdk_version, PIN.node_version) == (root["aws-cdk"], root["node"])
    assert PIN.cdk_version.startswith("2.") and PIN.node_version.startswith("22.")
    assert PIN.name == f"{PIN.cdk_version}-node{PIN.node_version}"


def test_the_first_use_installs_the_pinned_lockfile_once_then_reuses_it(
    npm_calls: Path, tmp_path: Path
) -> None:
    progress: list[str] = []
    bin_dir = install_toolchain(report=progress.append)
    target = tmp_path / "cache" / PIN.name
    assert bin_dir == target / "node_modules" / ".bin"
    assert (target / "package-lock.json").read_bytes() == dict(PIN.files)["package-lock.json"]
    [call] = _lines(npm_calls)
    assert call.split()[1:] == ["ci", "--no-audit", "--no-fund", "--loglevel=error", "--ignore-scripts=false"]
    assert call.split()[0] != str(target), "npm runs in a staging directory, renamed into place when complete"
    assert f"installing the CDK CLI {PIN.cdk_version} and Node.js {PIN.node_version} into {target}" in progress[0]
    assert "first use" in progress[0] and progress[1].startswith("installed")
    assert sorted(p.name for p in target.parent.iterdir()) == [f".{PIN.name}.lock", PIN.name], "no staging left"

    assert install_toolchain(report=progress.append) == bin_dir
    assert len(_lines(npm_calls)) == 1 and len(progress) == 2, "the second use neither installs nor says anything"


def test_cdk_cli_runs_the_projects_pinned_cli_else_the_kits(npm_calls: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    kit_bin = tmp_path / "cache" / PIN.name / "node_modules" / ".bin"
    assert CdkCli(project).executable() == str(kit_bin / "cdk")
    assert CdkCli(project).environment()["PATH"].split(os.pathsep)[0] == str(kit_bin), "the pinned node first"

    own = _executable(project / "node_modules" / ".bin" / "cdk", "#!/bin/sh\necho own\n")
    assert CdkCli(project).executable() == str(own)
    assert CdkCli(project).environment()["PATH"].split(os.pathsep)[0] == str(own.parent)
    assert len(_lines(npm_calls)) == 1


def test_pipeskit_cdk_wins_over_every_pin(npm_calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = _executable(tmp_path / "elsewhere" / "cdk", "#!/bin/sh\n")
    monkeypatch.setenv("PIPESKIT_CDK", str(chosen))
    assert CdkCli(tmp_path).executable() == str(chosen)
    assert _lines(npm_calls) == [], "nothing installed"


def test_without_npm_one_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PIPESKIT_CDK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PIPESKIT_CDK", raising=False)
    with pytest.raises(CdkCliError) as raised:
        CdkCli(tmp_path).executable()
    message = str(raised.value)
    assert "npm is needed once" in message and "no `npm` on PATH" in message
    assert "Install Node.js with npm" in message and "PIPESKIT_CDK" in message


def test_offline_and_not_cached_is_one_clear_error_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    fake_npm(bin_dir, fail="npm error code ENOTFOUND\nnpm error network request failed, reason: getaddrinfo ENOTFOUND")
    cache = tmp_path / "cache"
    with pytest.raises(CdkCliError) as raised:
        install_toolchain(cache, npm=str(bin_dir / "npm"), report=lambda _line: None)
    message = str(raised.value)
    assert "could not reach the npm registry (offline?" in message and "ENOTFOUND" in message
    assert "re-run" in message
    assert [p.name for p in cache.iterdir()] == [f".{PIN.name}.lock"], "no installation, no staging directory"


def test_an_install_without_the_pinned_node_is_refused(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_npm(bin_dir, node_version="20.20.2")  # e.g. npm configured to skip install scripts
    with pytest.raises(CdkCliError, match="without a working Node.js .*ignore-scripts"):
        install_toolchain(tmp_path / "cache", npm=str(bin_dir / "npm"), report=lambda _line: None)
    assert not (tmp_path / "cache" / PIN.name).exists()


def test_concurrent_first_uses_install_once(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    calls = fake_npm(bin_dir, delay_s=1)
    cache = tmp_path / "cache"
    code = (
        "import sys; from pathlib import Path; from pipeskit.cdk_cli import install_toolchain; "
        f"print(install_toolchain(Path({str(cache)!r}), npm={str(bin_dir / 'npm')!r}))"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], results
    assert {out.strip() for out, _err in results} == {str(cache / PIN.name / "node_modules" / ".bin")}
    assert len(_lines(calls)) == 1, "one process installed; the others waited and found it"
    assert sum("installing" in err for _out, err in results) == 1


def test_pipeskit_cdk_passes_every_argument_and_the_exit_status_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "args"
    cdk = _executable(tmp_path / "cdk", f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\ncat >> {record}\nexit 3\n')
    env = {**os.environ, "PIPESKIT_CDK": str(cdk)}
    arguments = ["deploy", "--require-approval", "never", "-c", "pipeskit:stage=prod", "--help", "--", "x y"]
    result = subprocess.run(
        [sys.executable, "-m", "pipeskit", "cdk", *arguments],
        input="from stdin\n", capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )
    assert result.returncode == 3, result.stderr
    assert record.read_text().splitlines() == [*arguments, "from stdin"]


def test_pipeskit_cdk_without_a_cli_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PIPESKIT_CDK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PIPESKIT_CDK", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["cdk", "--version"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: npm is needed once") and err.count("\n") == 1


def test_a_pipeskit_cdk_that_does_not_run_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPESKIT_CDK", str(tmp_path / "no-such-cdk"))
    monkeypatch.chdir(tmp_path)
    assert main(["cdk", "synth"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot run the CDK CLI PIPESKIT_CDK={tmp_path / 'no-such-cdk'}" in err and "No such file" in err


def test_ctrl_c_during_the_first_install_leaves_nothing_half_done(tmp_path: Path) -> None:
    import signal
    import time

    bin_dir = tmp_path / "bin"
    fake_npm(bin_dir, delay_s=60)
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(bin_dir), os.environ["PATH"]]),
        "PIPESKIT_CDK_CACHE_DIR": str(cache),
    }
    env.pop("PIPESKIT_CDK", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeskit", "cdk", "--version"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not (bin_dir / "npm.calls").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted: the CDK CLI was not installed" in err and "Traceback" not in err
    assert [p.name for p in cache.iterdir()] == [f".{PIN.name}.lock"]
