"""Sphinx configuration for the tlsfast documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors;
tests/test_docs.py does exactly this).  Pages are MyST markdown (myst-parser);
the API reference is autodoc of the installed package.
"""

import os
import sys

import tlsfast

# docs/_epytext.py, a local extension (see below).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

project = "tlsfast"
author = "the tlsfast authors"
copyright = "2026, the tlsfast authors"
version = release = tlsfast.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "_epytext"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# Not pages of their own: docs/examples/ and docs/howto_examples/ hold
# runnable programs (twisted.md includes docs/examples/README.md); images/
# holds the output of a `tlsfast bench --quick` run (bench-cli.md includes its
# markdown tables); _build is the output.
exclude_patterns = ["_build", "examples", "howto_examples", "images", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
# Twisted-facing code documents itself in Twisted's epytext dialect (C{x},
# L{x}, @param ...): _epytext rewrites each docstring autodoc reads into
# reST (tested by tests/test_docs.py); the sources stay epytext.

html_theme = "alabaster"
html_static_path = []
html_title = f"tlsfast {release}"


def _withoutTypeDocstring(app, what, name, obj, options, lines):
    # A module-level constant documented by autodata (a str) would show
    # str's own docstring; its description is in api.rst.
    if what == "data" and " ".join(lines).split() == (type(obj).__doc__ or "").split():
        lines.clear()


def setup(app):
    app.connect("autodoc-process-docstring", _withoutTypeDocstring)
