"""The version of tlsfast: the single source, read by setuptools (pyproject.toml) and by tlsfast."""

__version__ = "0.1.0"
