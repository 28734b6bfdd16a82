"""
The documentation builds without a single warning (``sphinx-build -W``);
the API page renders the epytext docstrings (docs/_epytext.py) as reST.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e '.[test]')")
pytest.importorskip("myst_parser", reason="myst-parser is not installed (pip install -e '.[test]')")

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")

# What raw epytext looks like in rendered text: inline markup and fields.
EPYTEXT = re.compile(r"\b[BCEILMSUX]\{|@(?:param|type|returns?|rtype|raises?|ivar|cvar|var|note|see)\b")


def pageText(path) -> str:
    """The visible text of an HTML page."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


@pytest.fixture(scope="module")
def epytext():
    spec = importlib.util.spec_from_file_location("_epytext", os.path.join(DOCS, "_epytext.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_build_warning_free(tmp_path):
    out = tmp_path / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-b", "html",
         "-d", str(tmp_path / "doctrees"), DOCS, str(out)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "warning" not in done.stderr.lower(), done.stderr
    for page in ("index", "twisted", "howto", "architecture", "compatibility", "benchmarks", "bench-cli",
                 "proxy", "testing", "api"):
        assert (out / f"{page}.html").is_file(), page
    api = (out / "api.html").read_text()
    for name in ("TLSEngine", "receive", "backend_info", "install", "TLSMemoryBIOProtocol",
                 "ServerOptions", "ClientOptions", "DEFAULT_SERVER_CIPHERS"):
        assert name in api, name
    # Epytext is rendered, not shown: no markup left in the text, fields
    # became Sphinx field lists, C{} literals and L{} cross-references.
    text = pageText(out / "api.html")
    assert not EPYTEXT.findall(text), sorted(set(EPYTEXT.findall(text)))
    for field in ("Parameters", "Returns", "Raises", "Variables"):
        assert f'<dt class="field-odd">{field}<' in api or f'<dt class="field-even">{field}<' in api, field
    assert "<strong>acceptableProtocols</strong>" in api  # a ServerOptions @param
    assert ('<code class="docutils literal notranslate"><span class="pre">True</span></code>'
            " if tlsfast is now in use") in api  # install()'s @return
    assert 'href="#tlsfast.twisted.TLSFastUnavailableWarning"' in api  # an L{} resolved
    assert "not written yet" not in pageText(out / "twisted.html")
    assert 'href="howto.html"' in (out / "twisted.html").read_text()
    assert "terminates, originates or re-encrypts" in (out / "proxy.html").read_text()  # the guide, not a placeholder
    assert "tlsfast bench --quick" in (out / "bench-cli.html").read_text()


def test_epytextFields(epytext):
    """Each field kind, names running onto a second line, several names."""
    lines = [
        "Summary with C{code}.",
        "",
        "@param name: what it is,",
        "    over two lines.",
        "@param first / second: a pair.",
        "@param one, two,",
        "    three: a list.",
        "@type name: C{int}",
        "@return: the result.",
        "@rtype: L{bytes}",
        "@raise ValueError: when bad.",
        "@ivar state: the state.",
        "@note: careful.",
        "@see: L{other}",
    ]
    assert epytext.epytextToRest(lines) == [
        "Summary with ``code``.",
        "",
        ":param name: what it is,",
        "    over two lines.",
        ":param first/second: a pair.",
        ":param one/two/three: a list.",
        ":type name: ``int``",
        ":returns: the result.",
        ":rtype: :py:obj:`bytes`",
        ":raises ValueError: when bad.",
        ":ivar state: the state.",
        ":Note: careful.",
        ":See also: :py:obj:`other`",
    ]


def test_epytextFieldListStartsABlock(epytext):
    """A field right after a paragraph line gets the blank line reST needs."""
    assert epytext.epytextToRest(["Text.", "@return: x"]) == ["Text.", "", ":returns: x"]


@pytest.mark.parametrize(("source", "rest"), [
    ("C{x}", "``x``"),
    ("L{tlsfast.TLSEngine}", ":py:obj:`tlsfast.TLSEngine`"),
    ("L{the engine<tlsfast.TLSEngine>}", ":py:obj:`the engine <tlsfast.TLSEngine>`"),
    ("I{is}", "*is*"),
    ("B{bold}", "**bold**"),
    ("U{https://example.com}", "`https://example.com <https://example.com>`__"),
    ("U{a site<https://example.com>}", "`a site <https://example.com>`__"),
    ("M{x^2}", ":math:`x^2`"),
    ("E{lb}", "{"),
    # Nested braces stay inside the literal.
    ("C{ECDHE-{ECDSA,RSA}-GCM}", "``ECDHE-{ECDSA,RSA}-GCM``"),
    ("I{C{x} here}", "*``x`` here*"),
    # Markup running into a word is joined with an escaped space.
    ("L{Foo}s", ":py:obj:`Foo`\\ s"),
    # A literal holding backquotes.
    ("C{a``b}", ":code:`a\\`\\`b`"),
    # Not markup: a dict literal, an unbalanced brace, lower case.
    ("x = {1: 2}", "x = {1: 2}"),
    ("C{open", "C{open"),
    ("c{x}", "c{x}"),
])
def test_epytextInline(epytext, source, rest):
    assert epytext.convertInline(source) == rest


def test_epytextInlineAcrossLines(epytext):
    assert epytext.epytextToRest(["see C{a", "b} here"]) == ["see ``a", "b`` here"]


def test_epytextLiteralBlocksUntouched(epytext):
    """Literal blocks (after "::") and doctests keep their text."""
    lines = [
        "Use it::",
        "",
        "    d = C{1}",
        "    @param x: not a field",
        "",
        ">>> L{x}",
        "",
        "After C{y}.",
    ]
    assert epytext.epytextToRest(lines) == lines[:-1] + ["After ``y``."]
