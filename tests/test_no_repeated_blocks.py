"""
No block of six or more lines is repeated between modules of C{tlsfast/}
(issue #15): a repeated block is a contract written twice.

Lines are compared after stripping white space; blank lines, comments,
lone punctuation (a bracket) and import lines (multi-line ones too) are left out,
as the project's C{duplicates} tool does.  Only identical runs count here
(the tool also reports runs alike in shape; review those by eye).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tlsfast"
WINDOW = 6
_SKIP = re.compile(r"^(#.*|[()\[\]{},:]*|(from\s+\S+\s+)?import\s.*|\"\"\"|''')$")


def significantLines(text: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the lines that count."""
    imports = {number for node in ast.walk(ast.parse(text)) if isinstance(node, (ast.Import, ast.ImportFrom))
               for number in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = " ".join(line.split())
        if stripped and number not in imports and not _SKIP.match(stripped):
            out.append((number, stripped))
    return out


def repeatedBlocks(sources: dict[str, str], window: int = WINDOW) -> list[str]:
    """Places where C{window} consecutive counted lines of one module stand in another."""
    seen: dict[tuple[str, ...], tuple[str, int]] = {}
    found = []
    for name, text in sorted(sources.items()):
        lines = significantLines(text)
        for start in range(len(lines) - window + 1):
            key = tuple(text for _, text in lines[start:start + window])
            first = seen.setdefault(key, (name, lines[start][0]))
            if first[0] != name:
                found.append(f"{name}:{lines[start][0]} repeats {first[0]}:{first[1]}")
    return found


def test_noBlockIsRepeatedBetweenModules():
    sources = {str(path.relative_to(ROOT.parent)): path.read_text()
               for path in ROOT.rglob("*.py")}
    assert repeatedBlocks(sources) == []


@pytest.mark.parametrize("window", [WINDOW])
def test_aRepeatedBlockIsFound(window):
    block = "\n".join(f"value{i} = compute({i})" for i in range(window))
    found = repeatedBlocks({"a.py": f"x = 1\n{block}\n", "b.py": f"# other\n\n{block}\ny = 2\n"})
    assert found == ["b.py:3 repeats a.py:2"]


def test_shorterRunsAndIgnoredLinesDoNotCount():
    block = "\n".join(f"value{i} = compute({i})" for i in range(WINDOW - 1))
    assert repeatedBlocks({"a.py": block, "b.py": "import os\n# c\n\n" + block}) == []
