"""
The OpenSSL table is written once (tlsfast/_openssl_spec.py) and three views
of it agree: the spec, what the compiled engine was built with
(_engine.compiled_table(), generated from the spec by setup.py), and
cryptography's cffi library (ffi.typeof of each function, each constant's
value).  Any drift in a name, a signature or a constant is named by the
binding's checks, which keep acceleration off; the drift tests below mutate
the spec to show each check fails.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.bindings._rust import _openssl

from tlsfast import _binding, _engine, _openssl_spec

ENGINE_SOURCE = Path(__file__).resolve().parent.parent / "_ext" / "_engine.pyx"


def _problems() -> list[str]:
    """Everything the binding finds wrong between the spec, the compiled engine and cffi."""
    _, problems = _binding.check_function_table(_openssl.ffi, _openssl.lib)
    return _binding.check_compiled_table(_engine) + problems


def test_the_three_views_agree():
    assert _problems() == []


def test_engine_was_compiled_from_the_spec():
    functions, constants = _engine.compiled_table()
    assert list(functions.items()) == [(f.name, f.pointer_type) for f in _openssl_spec.FUNCTIONS]
    assert constants == _openssl_spec.CONSTANTS


def test_spec_matches_cryptographys_cffi():
    ffi, lib = _openssl.ffi, _openssl.lib
    for function in _openssl_spec.FUNCTIONS:
        assert ffi.typeof(ffi.addressof(lib, function.name)) is ffi.typeof(function.pointer_type), function
    assert {name: getattr(lib, name) for name in _openssl_spec.CONSTANTS} == _openssl_spec.CONSTANTS


def test_spec_holds_only_what_the_engine_uses():
    source = ENGINE_SOURCE.read_text()
    called = set(re.findall(r"\bF\.(\w+)\(", source))
    assert called == {function.name for function in _openssl_spec.FUNCTIONS}
    unused = [name for name in _openssl_spec.CONSTANTS if not re.search(rf"\b{name}\b", source)]
    assert unused == []


def _with_function(monkeypatch: pytest.MonkeyPatch, which: str, **changes: object) -> None:
    """Change the spec's function ``which`` for this test."""
    monkeypatch.setattr(_openssl_spec, "FUNCTIONS", tuple(
        replace(function, **changes) if function.name == which else function
        for function in _openssl_spec.FUNCTIONS))


def test_renamed_function_is_named(monkeypatch):
    _with_function(monkeypatch, "SSL_pending", name="SSL_has_pending")
    assert _problems() == [
        "OpenSSL function SSL_has_pending is 'int (*)(const SSL *)' in tlsfast/_openssl_spec.py but the engine "
        "was compiled with None: rebuild the engine",
        "OpenSSL function SSL_pending is None in tlsfast/_openssl_spec.py but the engine "
        "was compiled with 'int (*)(const SSL *)': rebuild the engine",
        "OpenSSL function SSL_has_pending is missing from cryptography's binding",
    ]


@pytest.mark.parametrize(("changes", "signature"), [
    ({"returns": "long"}, "long (*)(const SSL *)"),
    ({"parameters": ("const SSL *", "int")}, "int (*)(const SSL *, int)"),
    ({"parameters": ("const BIO *",)}, "int (*)(const BIO *)"),
])
def test_changed_signature_is_named(monkeypatch, changes, signature):
    _with_function(monkeypatch, "SSL_pending", **changes)
    assert _problems() == [
        f"OpenSSL function SSL_pending is {signature!r} in tlsfast/_openssl_spec.py but the engine "
        "was compiled with 'int (*)(const SSL *)': rebuild the engine",
        f"OpenSSL function SSL_pending has signature int(*)(SSL *), engine expects {signature}",
    ]


def test_changed_constant_is_named(monkeypatch):
    monkeypatch.setitem(_openssl_spec.CONSTANTS, "SSL_SENT_SHUTDOWN", 4)
    assert _problems() == [
        "OpenSSL constant SSL_SENT_SHUTDOWN is 4 in tlsfast/_openssl_spec.py but the engine "
        "was compiled with 1: rebuild the engine",
        "OpenSSL constant SSL_SENT_SHUTDOWN is 1, engine expects 4",
    ]


def test_dropped_function_and_constant_are_named(monkeypatch):
    monkeypatch.setattr(_openssl_spec, "FUNCTIONS", _openssl_spec.FUNCTIONS[1:])
    monkeypatch.delitem(_openssl_spec.CONSTANTS, "SSL_ERROR_WANT_READ")
    assert _problems() == [
        "OpenSSL function SSL_read is None in tlsfast/_openssl_spec.py but the engine "
        "was compiled with 'int (*)(SSL *, void *, int)': rebuild the engine",
        "OpenSSL constant SSL_ERROR_WANT_READ is None in tlsfast/_openssl_spec.py but the engine "
        "was compiled with 2: rebuild the engine",
    ]


def test_bind_refuses_an_engine_built_from_another_spec(monkeypatch):
    _with_function(monkeypatch, "SSL_get_error", parameters=("SSL *", "long"))
    info = _binding.bind("test")
    assert not info.accelerated
    assert any(problem.startswith("OpenSSL function SSL_get_error is 'int (*)(SSL *, long)' in ")
               for problem in info.problems), info.problems


def test_an_engine_built_before_the_spec_is_refused():
    stale = ModuleType("tlsfast._engine")  # a .so from before compiled_table() existed
    assert _binding.check_compiled_table(stale) == [
        "compiled engine tlsfast._engine does not report its OpenSSL table (no compiled_table()): rebuild the engine"]
