"""The README's code blocks, each with the way a test runs it.

A fenced block's info string names its language and, for Python and YAML, how it is tested::

    ```python dagster            Dagster code: run in order with the README's other dagster blocks, in one
                                 namespace (a later block may use an earlier block's names, as a reader
                                 would); every ``Definitions`` it leaves must load
    ```python handler function=NAME
                                 a Lambda handler module, deployed as NAME with the pipes layer; the dagster
                                 blocks' assets that invoke NAME run it
    ```python cdk                a CDK app, synthesized (``continues`` appends it to the previous cdk block)
    ```python run                run on its own
    ```python pytest             a pytest function, called with the local AWS fixture
    ```yaml component            a component's ``defs.yaml``, loaded (``tests/integration/test_component.py``)
    ```python file=PATH          a file of the from-zero project ("Your own project, from zero"), written
                                 and run by that section's commands
    ```yaml file=PATH            the same, for YAML

GitHub renders the block by its first word and ignores the rest. A Python or YAML block without a
role fails `test_every_python_and_yaml_block_is_tested`: a snippet nobody runs is a snippet that rots.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

README = Path(__file__).resolve().parents[2] / "README.md"

ROLES = ("dagster", "handler", "cdk", "run", "pytest", "component", "file")
"""The ways a Python or YAML block is tested."""

TESTED_LANGUAGES = ("python", "yaml")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    language: str
    words: tuple[str, ...]
    options: dict[str, str] = field(hash=False)
    code: str
    line: int
    """The block's first line in the README (1-based), for messages."""
    section: str
    """The heading the block stands under."""

    @property
    def role(self) -> str | None:
        """How the block is tested (``file`` when it names one); None: not said."""
        if "file" in self.options:
            return "file"
        return next((word for word in self.words if word in ROLES), None)

    def where(self) -> str:
        return f"README.md line {self.line} ({self.section!r})"


def blocks(path: Path = README) -> list[Block]:
    """Every fenced block of ``path``, in order."""
    found: list[Block] = []
    section = ""
    tokens = MarkdownIt().parse(path.read_text())
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            section = tokens[index + 1].content
        if token.type != "fence" or token.map is None:
            continue
        language, *rest = shlex.split(token.info) or [""]
        options = dict(word.split("=", 1) for word in rest if "=" in word)
        words = tuple(word for word in rest if "=" not in word)
        found.append(Block(language, words, options, token.content, token.map[0] + 1, section))
    return found


def checked_blocks(path: Path = README) -> list[Block]:
    """The Python and YAML blocks: each must say its role."""
    return [block for block in blocks(path) if block.language in TESTED_LANGUAGES]


def of_role(role: str, path: Path = README) -> list[Block]:
    return [block for block in checked_blocks(path) if block.role == role]


def section_blocks(heading: str, path: Path = README) -> list[Block]:
    """The blocks under ``heading`` and its subsections, in order."""
    found: list[Block] = []
    inside = False
    level = 0
    tokens = MarkdownIt().parse(path.read_text())
    current: list[Block] = blocks(path)
    by_line = {block.line: block for block in current}
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            depth = int(token.tag[1:])
            title = tokens[index + 1].content
            if title == heading:
                inside, level = True, depth
            elif inside and depth <= level:
                inside = False
        if inside and token.type == "fence" and token.map is not None:
            found.append(by_line[token.map[0] + 1])
    return found
