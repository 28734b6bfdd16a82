"""
A Sphinx extension: render epytext docstrings as reStructuredText.

tlsfast's Twisted-facing code documents itself in Twisted's epytext dialect
(C{code}, L{link}, @param ...), which autodoc would show verbatim.  This
rewrites each docstring autodoc reads (the C{autodoc-process-docstring}
event) into the reST Sphinx understands; the sources keep their epytext.

    - fields: C{@param x: ...} -> C{:param x: ...} (also @type, @return(s),
      @rtype, @raise(s), @ivar/@cvar/@var, @keyword); any other field
      (@note, @see, @since, ...) becomes a generic field ("Note", "See also").
      A field's name may run onto the next line; several names ("a / b",
      "a, b") are kept together as one entry, "a/b".
    - inline markup, with nested braces: C{x} -> ``x``, L{x} / L{text<x>}
      -> :py:obj:, I{x} -> *x*, B{x} -> **x**, U{url} / U{text<url>} -> a
      link, M{x} -> :math:, X{x} -> x, E{lb}/E{rb} -> braces, S{x} -> x.
    - literal blocks (after "::") and doctest blocks are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Fields that Sphinx's Python domain knows: epytext tag -> (reST tag, takes an argument).
_FIELDS = {
    "param": ("param", True), "parameter": ("param", True), "arg": ("param", True),
    "argument": ("param", True), "keyword": ("keyword", True), "kwarg": ("keyword", True),
    "kwparam": ("keyword", True), "type": ("type", True),
    "ivar": ("ivar", True), "cvar": ("cvar", True), "var": ("var", True),
    "return": ("returns", False), "returns": ("returns", False),
    "rtype": ("rtype", False), "returntype": ("rtype", False),
    "raise": ("raises", True), "raises": ("raises", True),
    "except": ("raises", True), "exception": ("raises", True),
}
# Other fields become generic reST fields with these labels.
_LABELS = {"see": "See also", "seealso": "See also", "note": "Note", "warning": "Warning",
           "since": "Since", "author": "Author", "todo": "To do", "deprecated": "Deprecated"}

_FIELD_START = re.compile(r"^(\s*)@(\w+)\b(.*)$")
_FIELD_NAME_END = re.compile(r":(\s|$)")
_INLINE_START = re.compile(r"\b([BCEGILMSUX])\{")
_TARGET = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.DOTALL)


def _matchingBrace(text: str, opening: int) -> int | None:
    """The index of the brace closing the one at C{opening}, if any."""
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


def _joined(converted: str, after: str) -> str:
    # reST inline markup must end before whitespace or punctuation; an
    # escaped space (backslash, space) joins it to the word that follows.
    # (It starts after one already: _INLINE_START wants a word boundary.)
    if after and (after[0].isalnum() or after[0] == "_"):
        converted += "\\ "
    return converted


def _literal(content: str) -> str:
    content = content.strip()
    if not content:
        return ""
    if "``" in content or content.endswith("`"):
        return ":code:`" + content.replace("\\", "\\\\").replace("`", "\\`") + "`"
    return f"``{content}``"


def _convertTag(tag: str, content: str, inline: Callable[[str], str]) -> str:
    if tag == "C":
        return _literal(content)
    if tag == "E":
        return {"lb": "{", "rb": "}"}.get(content, content)
    if tag in "SX":
        return inline(content)
    if tag == "I":
        return f"*{inline(content).strip()}*"
    if tag == "B":
        return f"**{inline(content).strip()}**"
    if tag == "M":
        return f":math:`{content}`"
    if tag == "G":
        return inline(content)
    match = _TARGET.match(content)
    text, target = (match.group(1), match.group(2)) if match else (None, content.strip())
    if tag == "U":
        return f"`{text or target} <{target}>`__"
    # L: a cross-reference; unresolved ones render as code without a warning.
    return f":py:obj:`{text} <{target}>`" if text else f":py:obj:`{target}`"


def convertInline(text: str) -> str:
    """Epytext inline markup in C{text} (which may span lines) to reST."""
    out = []
    position = 0
    while True:
        match = _INLINE_START.search(text, position)
        if match is None:
            out.append(text[position:])
            return "".join(out)
        closing = _matchingBrace(text, match.end() - 1)
        if closing is None:  # unbalanced: not markup
            out.append(text[position:match.end()])
            position = match.end()
            continue
        out.append(text[position:match.start()])
        converted = _convertTag(match.group(1), text[match.end():closing], convertInline)
        out.append(_joined(converted, text[closing + 1:]))
        position = closing + 1


def _fieldName(argument: str) -> str:
    names = [n for n in re.split(r"[\s,/]+", argument.strip()) if n]
    return "/".join(names)


def _convertField(indent: str, tag: str, argument: str, body: str) -> str:
    known = _FIELDS.get(tag.lower())
    if known is not None:
        restTag, takesArgument = known
        if takesArgument and argument:
            return f"{indent}:{restTag} {_fieldName(argument)}: {body}".rstrip()
        if not takesArgument and argument:
            body = f"{argument} {body}"
        return f"{indent}:{restTag}: {body}".rstrip()
    label = _LABELS.get(tag.lower(), tag.capitalize())
    if argument:
        body = f"{argument}: {body}"
    return f"{indent}:{label}: {body}".rstrip()


def _isLiteralStart(line: str) -> bool:
    return line.rstrip().endswith("::")


def _indentation(line: str) -> int:
    return len(line) - len(line.lstrip())


def _split(lines: list[str]) -> list[tuple[bool, list[str]]]:
    """Runs of (isLiteral, lines): literal blocks after "::" and doctests are kept apart."""
    runs: list[tuple[bool, list[str]]] = []

    def add(literal: bool, line: str) -> None:
        if runs and runs[-1][0] == literal:
            runs[-1][1].append(line)
        else:
            runs.append((literal, [line]))

    index = 0
    while index < len(lines):
        line = lines[index]
        if line.lstrip().startswith(">>>"):
            while index < len(lines) and lines[index].strip():
                add(True, lines[index])
                index += 1
            continue
        add(False, line)
        index += 1
        if _isLiteralStart(line):
            base = _indentation(line)
            while index < len(lines) and (not lines[index].strip()
                                          or _indentation(lines[index]) > base):
                add(True, lines[index])
                index += 1
    return runs


def _convertFields(lines: list[str]) -> list[str]:
    out: list[str] = []
    inFields = False  # inside a field list (a field or its continuation)
    index = 0
    while index < len(lines):
        match = _FIELD_START.match(lines[index])
        if match is None:
            line = lines[index]
            inFields = inFields and bool(line.strip()) and line[:1].isspace()
            out.append(line)
            index += 1
            continue
        indent, tag, rest = match.groups()
        index += 1
        # The name list may continue on the next lines, up to its colon.
        while not _FIELD_NAME_END.search(rest) and index < len(lines) and lines[index].strip() \
                and not _FIELD_START.match(lines[index]):
            rest += " " + lines[index].strip()
            index += 1
        end = _FIELD_NAME_END.search(rest)
        argument, body = (rest[:end.start()], rest[end.end():]) if end else (rest, "")
        if out and out[-1].strip() and not inFields:
            out.append("")  # a field list starts a new block in reST
        out.append(_convertField(indent, tag, argument.strip(), body.strip()))
        inFields = True
    return out


def epytextToRest(lines: list[str]) -> list[str]:
    """Convert the lines of one (dedented) docstring from epytext to reST."""
    result: list[str] = []
    for literal, run in _split(lines):
        if literal:
            result.extend(run)
        else:
            result.extend(convertInline("\n".join(_convertFields(run))).split("\n"))
    return result


def _processDocstring(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = epytextToRest(lines)


def setup(app) -> dict:
    app.connect("autodoc-process-docstring", _processDocstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
