"""
The OpenSSL surface the compiled engine calls: the one place it is written.

Everything else is derived from these two tables:

- setup.py generates the engine's declarations from them at build time
  (``_ext/openssl_table.pxi``: the struct of function pointers, the casts that
  fill it, the ABI constants, and ``compiled_table()``, which reports what the
  engine was compiled with);
- tlsfast._binding checks them, at import, against cryptography's cffi library
  (``ffi.typeof`` of each function's address, the value of each constant) and
  against ``_engine.compiled_table()``, and fills the engine's table only when
  all three agree.

Standard library only: setup.py loads this file by path, in a build
environment that has none of tlsfast's dependencies.  A function or constant
belongs here only if _ext/_engine.pyx uses it (tests/test_openssl_spec.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    """One OpenSSL function: its name and C signature (types as cffi and Cython both spell them)."""

    name: str
    returns: str
    parameters: tuple[str, ...]

    @property
    def pointer_type(self) -> str:
        """The C type of a pointer to it, e.g. ``int (*)(SSL *, int)``."""
        return f"{self.returns} (*)({', '.join(self.parameters)})"


# In the order of the engine's function table.  ``const`` is part of what the
# engine is compiled with; cffi's types ignore it (the ABI is the same).
FUNCTIONS: tuple[Function, ...] = (
    Function("SSL_read", "int", ("SSL *", "void *", "int")),
    Function("SSL_write", "int", ("SSL *", "const void *", "int")),
    Function("SSL_do_handshake", "int", ("SSL *",)),
    Function("SSL_get_error", "int", ("const SSL *", "int")),
    Function("SSL_shutdown", "int", ("SSL *",)),
    Function("SSL_pending", "int", ("const SSL *",)),
    Function("SSL_get_shutdown", "int", ("const SSL *",)),
    # cryptography's binding has no SSL_is_init_finished/SSL_in_init/
    # SSL_get_state: the state's name is the one exposed view of
    # SSL_get_state() (HANDSHAKE_FINISHED_STATE in _engine.pyx).
    Function("SSL_state_string_long", "const char *", ("const SSL *",)),
    Function("BIO_read", "int", ("BIO *", "void *", "int")),
    Function("BIO_write", "int", ("BIO *", "const void *", "int")),
    Function("BIO_get_mem_data", "long", ("BIO *", "char **")),
    Function("BIO_set_mem_eof_return", "long", ("BIO *", "int")),
    Function("ERR_clear_error", "void", ()),
)

# Stable ABI constants (ssl.h) compiled into the engine as C enum values.
CONSTANTS: dict[str, int] = {
    "SSL_ERROR_WANT_READ": 2,
    "SSL_RECEIVED_SHUTDOWN": 2,
    "SSL_SENT_SHUTDOWN": 1,
}


def table() -> tuple[dict[str, str], dict[str, int]]:
    """The spec in the shape ``_engine.compiled_table()`` returns: ({name: pointer type}, {name: value})."""
    return {function.name: function.pointer_type for function in FUNCTIONS}, dict(CONSTANTS)
