"""The README's "Your own project, from zero", run as written: the built wheel, a new directory outside the
checkout, a fresh virtualenv, the user's own handler and CDK app, two deploys to the local AWS and the
asset materialized through the component after each.

The section's ``bash from-zero`` blocks run in order in one shell; its ``file=PATH`` blocks are written
where they stand. What the shell gets from this machine is what a new user has: ``PATH`` without the
checkout's virtualenv or ``node_modules``, no ``PIPESKIT_*`` or ``AWS_*`` variable, and pip finding
``pipes-lambda-kit`` as the wheel just built (``PIP_FIND_LINKS``) — the only difference from a release.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.constants import PROJECT_DIR
from tests.docs.readme import Block, section_blocks

pytestmark = pytest.mark.e2e

SECTION = "Your own project, from zero"
HEREDOC_END = "PIPESKIT_README_EOF"


def section_script(blocks: list[Block]) -> str:
    """One bash script: the commands of the section and its files, in the README's order."""
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]  # the background local AWS
    for block in blocks:
        lines.append(f'echo "@@ line {block.line} $(date +%s.%N)"')  # when each block starts, for the timings
        if "file" in block.options:
            path = block.options["file"]
            assert HEREDOC_END not in block.code
            lines += [f"mkdir -p \"$(dirname '{path}')\"", f"cat > '{path}' <<'{HEREDOC_END}'", block.code.rstrip("\n"),
                      HEREDOC_END]  # fmt: skip
        elif block.language == "bash" and "from-zero" in block.words:
            lines.append(block.code)
    return "\n".join(lines) + "\n"


def user_environment(wheel_dir: Path, home: Path) -> dict[str, str]:
    """This machine's environment as a new user's shell has it: nothing of the checkout or the test run."""
    checkout = str(PROJECT_DIR)
    path = [entry for entry in os.environ["PATH"].split(os.pathsep) if entry and not entry.startswith(checkout)]
    path = [entry for entry in path if Path(entry) != Path(sys.executable).parent]
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PIPESKIT_", "AWS_", "DAGSTER_", "PYTEST", "VIRTUAL_ENV", "PYTHON", "CDK_"))
    }
    return {
        **kept,
        "PATH": os.pathsep.join(path),
        "PIP_FIND_LINKS": str(wheel_dir),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIPESKIT_LOCAL_PORT": "0",  # a free port: CI may run other local AWSs
        "DAGSTER_HOME": str(home / "dagster-home"),
    }


def test_the_section_says_what_it_runs() -> None:
    blocks = section_blocks(SECTION)
    commands = [block for block in blocks if block.language == "bash"]
    assert commands and all("from-zero" in block.words for block in commands), (
        f"every bash block of {SECTION!r} must be marked from-zero (it runs in CI): "
        f"{[block.where() for block in commands if 'from-zero' not in block.words]}"
    )
    files = [block.options["file"] for block in blocks if "file" in block.options]
    assert any(name.endswith("defs.yaml") for name in files), "the section declares no component"


def test_your_own_project_from_zero(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("from-zero")
    (home / "dagster-home").mkdir()
    script = home / "from-zero.sh"
    script.write_text(section_script(section_blocks(SECTION)))
    started = time.monotonic()
    process = subprocess.run(
        ["bash", str(script)], cwd=home, env=user_environment(wheel.parent, home), capture_output=True, text=True,
        timeout=1200, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    output = process.stdout + process.stderr
    (home / "from-zero.log").write_text(output)
    assert process.returncode == 0, f"the section failed after {seconds:.0f} s:\n{output[-6000:]}"
    marks = [(int(line), float(at)) for line, at in re.findall(r"^@@ line (\d+) ([\d.]+)$", process.stdout, re.M)]
    spans = {line: round(end - start, 1) for (line, start), (_, end) in zip(marks, marks[1:], strict=False)}
    print(f"from zero: {seconds:.0f} s in all; seconds per README block (by line): {spans}")
    versions = re.findall(r"report version (\d+)", output)
    assert versions and versions[0] == "1" and versions[-1] == "2", (
        f"the materializations did not run the first and then the edited handler: {versions}\n{output[-4000:]}"
    )
