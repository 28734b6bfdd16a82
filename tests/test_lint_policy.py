"""
Every lint or type-check suppression says why: a ``# noqa: CODE`` or
``# type: ignore[code]`` names its codes and is followed, on the same line,
by a reason (after ``-``, ``--``, ``#`` or ``(``).  ruff and mypy themselves
run in ``make lint`` (part of ``make test``) with the configuration in
pyproject.toml.
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TREES = ("tlsfast", "tests", "bench", "tools", "docs", "_ext", "setup.py")
SUFFIXES = {".py", ".pyi", ".pyx", ".pxd"}

SUPPRESSION = re.compile(r"#\s*(noqa|type:\s*ignore)\b(?P<rest>.*)$")
NOQA = re.compile(r"^:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*(?P<reason>.*)$")
IGNORE = re.compile(r"^\[[a-z0-9-]+(\s*,\s*[a-z0-9-]+)*\](?P<reason>.*)$")
REASON = re.compile(r"^\s*(#|-{1,2}|\()\s*\S")


def _sources():
    for tree in TREES:
        path = ROOT / tree
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            if file.suffix in SUFFIXES and "_build" not in file.parts:
                yield file


def suppressionProblem(line: str) -> str | None:
    """Why this line's suppression is not acceptable, or None."""
    match = SUPPRESSION.search(line)
    if match is None:
        return None
    kind, rest = match.group(1), match.group("rest")
    shape = NOQA if kind == "noqa" else IGNORE
    specific = shape.match(rest)
    if specific is None:
        return f"{kind} without codes"
    if not REASON.match(specific.group("reason")):
        return f"{kind} without a reason"
    return None


@pytest.mark.parametrize("line, problem", [
    ("x = 1  # noqa", "noqa without codes"),
    ("x = 1  # noqa: E402", "noqa without a reason"),
    ("x = 1  # noqa: E402 - installed first", None),
    ("x = 1  # noqa: BLE001, S110  # must not raise into C", None),
    ("x = 1  # noqa: BLE001 (reported by the test's thread)", None),
    ("x = 1  # type: ignore", "type: ignore without codes"),
    ("x = 1  # type: ignore[assignment]", "type: ignore without a reason"),
    ("x = 1  # type: ignore[assignment,misc]  # no epoll here", None),
    ("x = 1  # a comment", None),
])
def test_suppressionProblem(line, problem):
    assert suppressionProblem(line) == problem


def test_every_suppression_states_its_reason():
    problems = []
    for file in _sources():
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if file.name == "test_lint_policy.py":
                continue  # its own examples
            problem = suppressionProblem(line)
            if problem:
                problems.append(f"{file.relative_to(ROOT)}:{number}: {problem}: {line.strip()}")
    assert not problems, "\n".join(problems)
