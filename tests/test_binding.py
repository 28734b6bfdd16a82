"""The binding refuses anything it cannot call safely, with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

from cryptography.hazmat.bindings._rust import _openssl

import tlsfast
from tlsfast import _binding, _openssl_spec


def test_acceleration_is_active_here():
    info = tlsfast.backend_info()
    assert info.accelerated, info.problems
    assert info.problems == []
    assert info.openssl_version.startswith("OpenSSL ")
    assert info.cryptography_version and info.pyopenssl_version


def test_every_function_is_found_with_its_signature():
    addresses, problems = _binding.check_function_table(_openssl.ffi, _openssl.lib)
    assert problems == []
    assert set(addresses) == {function.name for function in _openssl_spec.FUNCTIONS}
    assert all(isinstance(a, int) and a for a in addresses.values())


def test_missing_function_is_named(monkeypatch):
    # SSL_read_ex is absent from cryptography's binding today: an engine that
    # needed it must be refused with its name, not crash.
    read_ex = _openssl_spec.Function("SSL_read_ex", "int", ("SSL *", "void *", "size_t", "size_t *"))
    monkeypatch.setattr(_openssl_spec, "FUNCTIONS", (*_openssl_spec.FUNCTIONS, read_ex))
    addresses, problems = _binding.check_function_table(_openssl.ffi, _openssl.lib)
    assert "SSL_read_ex" not in addresses
    assert problems == ["OpenSSL function SSL_read_ex is missing from cryptography's binding"]


def test_changed_signature_is_named(monkeypatch):
    monkeypatch.setattr(_openssl_spec, "FUNCTIONS", tuple(
        replace(function, returns="long") if function.name == "SSL_pending" else function
        for function in _openssl_spec.FUNCTIONS))
    addresses, problems = _binding.check_function_table(_openssl.ffi, _openssl.lib)
    assert "SSL_pending" not in addresses
    assert problems == ["OpenSSL function SSL_pending has signature int(*)(SSL *), "
                        "engine expects long (*)(const SSL *)"]


def test_untested_versions_are_refused():
    problems = _binding.check_versions({"cryptography": "51.0.1", "pyOpenSSL": "26.4.0"})
    assert len(problems) == 1
    assert problems[0].startswith("cryptography 51.0.1 is outside the tested range 50.0 <= v < 51.0")
    assert _binding.check_versions({"cryptography": "50.0.2", "pyOpenSSL": "26.4.0"}) == []


def _info_in_subprocess(**env):
    result = subprocess.run(
        [sys.executable, "-m", "tlsfast", "info"],
        env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return result.stdout


def test_info_command_reports_active():
    out = _info_in_subprocess()
    assert "acceleration   active" in out
    assert f"tlsfast        {tlsfast.__version__}" in out
    assert "OpenSSL        OpenSSL " in out


def test_disable_switch_falls_back_with_reason():
    out = _info_in_subprocess(TLSFAST_DISABLE="1")
    assert "acceleration   OFF" in out
    assert "problem        disabled by TLSFAST_DISABLE" in out


# What a program sees of an engine that cannot be used: TLSEngine(c) and
# require_engine() raise AccelerationUnavailable with the reasons, and the
# Twisted glue keeps Twisted's own record path.
_UNAVAILABLE_ENGINE = (
    "import tlsfast\n"
    "from OpenSSL import SSL\n"
    "from tlsfast.twisted._protocol import engineFor\n"
    "assert not tlsfast.ACCELERATED\n"
    "connection = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)\n"
    "for attempt in (lambda: tlsfast.TLSEngine(connection), tlsfast.require_engine):\n"
    "    try:\n        attempt()\n"
    "    except tlsfast.AccelerationUnavailable as e:\n        print('refused:', e)\n"
    "print('isinstance:', isinstance(connection, tlsfast.TLSEngine))\n"
    "print('glue engine:', engineFor(connection))\n"
)


def test_fallback_when_engine_cannot_be_imported(tmp_path):
    # A tlsfast whose compiled engine is missing: import still works and the
    # reason is reported.
    code = "import sys; sys.modules['tlsfast._engine'] = None\n" + _UNAVAILABLE_ENGINE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    refusal = "refused: compiled engine tlsfast._engine cannot be imported: "
    assert out.count(refusal) == 2, out
    assert "isinstance: False\nglue engine: None\n" in out


def test_disabled_engine_raises_naming_the_reason():
    out = subprocess.run([sys.executable, "-c", _UNAVAILABLE_ENGINE], capture_output=True, text=True,
                         check=True, env={**os.environ, "TLSFAST_DISABLE": "1"}).stdout
    assert out == ("refused: disabled by TLSFAST_DISABLE\n" * 2
                   + "isinstance: False\nglue engine: None\n")


def test_engine_refuses_to_run_without_a_table(tmp_path):
    code = (
        "import sys, os\n"
        "os.environ['TLSFAST_DISABLE'] = '1'\n"
        "import tlsfast\nfrom tlsfast import _engine\n"
        "from OpenSSL import SSL\n"
        "try:\n    _engine.TLSEngine(SSL.Connection(SSL.Context(SSL.TLS_METHOD), None))\n"
        "except RuntimeError as e:\n    print('refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "refused: tlsfast engine used before its OpenSSL binding was installed" in out


def test_function_table_needs_the_helpers_first():
    code = (
        "import os\n"
        "os.environ['TLSFAST_DISABLE'] = '1'\n"
        "import tlsfast\nfrom tlsfast import _binding, _engine\n"
        "from cryptography.hazmat.bindings._rust import _openssl\n"
        "addresses, problems = _binding.check_function_table(_openssl.ffi, _openssl.lib)\n"
        "assert not problems, problems\n"
        "from OpenSSL import SSL\n"
        "try:\n    _engine.install_function_table(addresses)\n"
        "except RuntimeError as e:\n    print('refused:', e)\n"
        "try:\n    _engine.TLSEngine(SSL.Connection(SSL.Context(SSL.TLS_METHOD), None))\n"
        "except RuntimeError as e:\n    print('engine refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == ("refused: install_python_helpers() must be called first\n"
                   "engine refused: tlsfast engine used before its OpenSSL binding was installed\n")
