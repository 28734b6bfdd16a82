"""Build the compiled core (Cython sources in _ext/) into the tlsfast package.

Metadata lives in pyproject.toml; this file only declares the extension.
The engine calls OpenSSL through function pointers filled at import, so it
links against no OpenSSL library and needs no OpenSSL headers.

The extension lists its Cython sources (so the sdist carries them) and is
cythonized when built, not when this file is read: building the sdist or the
metadata needs no C compiler and writes no generated C.  Cython comes from
build-system.requires.
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
EXT = "_ext"

extra_compile_args = ["-O2"]
extra_link_args = []
if os.environ.get("TLSFAST_ASAN"):
    # AddressSanitizer build for `make asan` (see Makefile).
    extra_compile_args = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]
    extra_link_args = ["-fsanitize=address"]


class CythonizeBuildExt(build_ext):
    """build_ext that turns an extension's .pyx sources into C just before compiling it."""

    def build_extension(self, ext):
        from Cython.Build import cythonize

        (cythonized,) = cythonize(
            [ext],
            include_path=[os.path.join(HERE, EXT)],
            compiler_directives={"language_level": 3},
            annotate=bool(os.environ.get("TLSFAST_ANNOTATE")),
            force=self.force,
        )
        ext.sources = cythonized.sources
        super().build_extension(ext)


setup(
    ext_modules=[
        Extension(
            "tlsfast._engine",
            [os.path.join(EXT, "_engine.pyx")],
            depends=[os.path.join(EXT, "openssl.pxd")],
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        ),
    ],
    cmdclass={"build_ext": CythonizeBuildExt},
)
