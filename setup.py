"""Build the compiled core (Cython sources in _ext/) into the tlsfast package.

Metadata lives in pyproject.toml; this file only declares the extension.
The engine calls OpenSSL through function pointers filled at import, so it
links against no OpenSSL library and needs no OpenSSL headers.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

extra_compile_args = ["-O2"]
extra_link_args = []
if os.environ.get("TLSFAST_ASAN"):
    # AddressSanitizer build for `make asan` (see Makefile).
    extra_compile_args = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]
    extra_link_args = ["-fsanitize=address"]

extensions = [
    Extension(
        "tlsfast._engine",
        [os.path.join("_ext", "_engine.pyx")],
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=[os.path.join(HERE, "_ext")],
        compiler_directives={"language_level": 3},
        annotate=bool(os.environ.get("TLSFAST_ANNOTATE")),
    ),
)
