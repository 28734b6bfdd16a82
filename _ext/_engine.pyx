# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: binding=False
# (binding=False: methods are plain METH_O/METH_NOARGS C functions, the cheapest
#  call Python has; the hot path is one such call per chunk.)
"""
The tlsfast record engine: a sans-IO driver for the SSL* and the two memory
BIOs of a pyOpenSSL Connection, moving whole chunks in one call into C.

Theory of operation
-------------------
A pyOpenSSL ``Connection(ctx, None)`` owns an SSL* wired to two memory BIOs:
``_into_ssl`` (ciphertext from the peer, "rbio") and ``_from_ssl`` (ciphertext
for the peer, "wbio").  Stock Twisted moves data through them with one Python
call per 32 KiB (recv) or per record (send, bio_read), each allocating a cffi
buffer and copying it again into bytes.  The engine keeps the very same SSL*
(so the Context's verify, ALPN and SNI callbacks, and anything else pyOpenSSL
set up, still apply) and does the loops in C:

    receive(ciphertext) -> plaintext    BIO_write + handshake + SSL_read loop
    send(plaintext)     -> ciphertext   SSL_write loop + BIO_read
    outgoing()          -> ciphertext   handshake/alert/ticket bytes queued
                                        by the other calls

Results are bytes objects allocated at their final size (the mem BIOs report
how much they hold) and read into directly: one copy, no temporary buffer.

Connection states (shared with the Twisted glue, docs/architecture.md):

    HANDSHAKING --handshake done--> OPEN --close_notify sent/received--> CLOSING
         |                            |                                     |
         +----------- fatal error ----+------------------------------------>+ FAILED

Errors: "need more data" is a normal return (b"" or False), never an
exception.  Every other OpenSSL failure is handed to pyOpenSSL's own
Connection._raise_ssl_error, so callers see exactly the exception pyOpenSSL
would raise (including exceptions stored by its verify/ALPN callbacks), and
the error queue is cleared afterwards.  Plaintext decrypted before a failure is
never lost: it is returned, and the failure is raised by the next receive()
(or taken with take_deferred_error()).

An engine takes the handshake state from OpenSSL when it is bound: bound to a
Connection whose handshake pyOpenSSL already finished, it is OPEN at once.

Misuse raises, never crashes
----------------------------
Only an ``OpenSSL.SSL.Connection`` (or a subclass) made with ``bio=None`` can
be bound: its ``_ssl``, ``_into_ssl`` and ``_from_ssl`` must be cffi ``SSL *``
and ``BIO *`` pointers, else TypeError (the same for reference_transfer).

OpenSSL must not be re-entered on one SSL*, and callbacks (verify, ALPN, SNI,
info) run inside the SSL_do_handshake/SSL_read of the call that triggered
them.  So each bound Connection carries one busy flag, shared by every engine
bound to it and by reference_transfer.  The guard's contract:

- do_handshake(), receive(), receive_eof(), send() and shutdown() enter
  OpenSSL's state machine and hold the flag for their whole run.  Any of them
  called while it is held -- from a callback of the running call, or from
  another thread -- raises ``RuntimeError("TLSEngine is busy: ...")`` before
  touching OpenSSL.  The flag is released on every exit, exceptions included,
  so an exception raised by a callback propagates exactly as before.
- outgoing() and the queries (plaintext_pending, outgoing_pending,
  peer_closed, close_sent) only read.  From a callback of the running call
  (its own thread) they are allowed, as pyOpenSSL's bio_read and pending are:
  Twisted's failVerification drains the alert from inside the handshake's
  info callback.  Except outgoing() inside send(), which may already hold the
  ciphertext before it: taking later bytes would reorder the stream.  From
  another thread they raise while the flag is held.
- The flag is a plain C field (owner thread, 0 when idle), read and written
  only while holding the GIL: the methods never release it, and
  reference_transfer takes the flags before it does.  So check-and-set is
  atomic, and stays so if a later version releases the GIL around OpenSSL
  calls.  A free-threaded build would have to make it an atomic
  compare-and-swap before declaring the module free-threading compatible.
- pyOpenSSL's own Connection methods do not look at the flag: calling them on
  a Connection during an engine call is the misuse it already was without
  tlsfast.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.ref cimport PyObject, Py_XDECREF
from libc.errno cimport errno
from libc.limits cimport INT_MAX
from libc.stdint cimport uintptr_t
from libc.stdlib cimport malloc, free
from libc.string cimport strcmp

# The OpenSSL table: struct F of function pointers, the ABI constants,
# _fill_function_table() and compiled_table(), generated by setup.py from
# tlsfast/_openssl_spec.py (the one place that surface is written).
include "openssl_table.pxi"

cdef bint _table_ready = False          # F is filled (install_function_table)

# What SSL_state_string_long() says in state TLS_ST_OK, the state
# SSL_is_init_finished() tests (the same text from OpenSSL 1.1.1 to 4.0).
DEF HANDSHAKE_FINISHED_STATE = b"SSL negotiation finished successfully"

# Plaintext handed to SSL_write per round before draining the wbio, so the mem
# BIO stays small (it grows by realloc+memset) however large one send() is.
DEF WRITE_ROUND = 256 * 1024
# Upper bound of TLS record expansion we plan for before growing the result
# (TLS 1.3 AEAD adds 22 bytes, TLS 1.2 GCM 29, CBC up to ~330: growth covers it).
DEF RECORD_OVERHEAD = 64
DEF RECORD_PLAINTEXT = 16384


# Set by _binding: cryptography's ffi and lib (ffi turns cdata pointers into
# addresses and checks their C type), pyOpenSSL's WantReadError (the one
# exception the handshake path swallows) and Connection class.
cdef object _ffi = None
cdef object _lib = None
cdef object _WantReadError = None
cdef object _Connection = None
cdef object _CData = None
cdef object _typeof = None          # ffi.typeof and ffi.cast, looked up once
cdef object _cast = None
cdef object _UINTPTR = None
cdef object _SSL_POINTER = None
cdef object _BIO_POINTER = None


def install_python_helpers(ffi, lib, want_read_error, connection_type):
    """
    Give the engine cryptography's ``ffi``/``lib`` and pyOpenSSL's
    ``WantReadError`` and ``Connection``.  Called by _binding, before
    install_function_table(); once the table is installed, only the very same
    objects are accepted again.
    """
    global _ffi, _lib, _WantReadError, _Connection, _CData
    global _typeof, _cast, _UINTPTR, _SSL_POINTER, _BIO_POINTER
    if _table_ready:
        if (ffi is _ffi and lib is _lib and want_read_error is _WantReadError
                and connection_type is _Connection):
            return
        raise RuntimeError("the engine is already bound to cryptography's OpenSSL")
    if not (isinstance(want_read_error, type) and issubclass(want_read_error, Exception)):
        raise TypeError(f"want_read_error must be an exception class, not {want_read_error!r}")
    if not isinstance(connection_type, type):
        raise TypeError(f"connection_type must be a class, not {connection_type!r}")
    _UINTPTR = ffi.typeof("uintptr_t")
    _SSL_POINTER = ffi.typeof("SSL *")
    _BIO_POINTER = ffi.typeof("BIO *")
    _CData = ffi.CData
    _typeof, _cast = ffi.typeof, ffi.cast
    _ffi, _lib = ffi, lib
    _WantReadError, _Connection = want_read_error, connection_type


def install_function_table(dict addresses):
    """
    Fill the C function table from {name: address}.  Called once by _binding,
    after it checked each function's signature.  Every address must be that of
    the function of the same name in the ``lib`` given to
    install_python_helpers() (else ValueError: a call through any other
    pointer would crash); installing the same table again changes nothing.
    """
    global _table_ready
    if _lib is None:
        raise RuntimeError("install_python_helpers() must be called first")
    for name in _FUNCTION_NAMES:
        address = addresses.get(name)
        if not address:
            raise ValueError(f"no address for OpenSSL function {name}")
        if address != int(_ffi.cast(_UINTPTR, _ffi.addressof(_lib, name))):
            raise ValueError(f"{address!r} is not the address of OpenSSL function {name}")
    if _table_ready:
        return
    _fill_function_table(addresses)
    _table_ready = True


# ---------------------------------------------------------------------------
# Binding to a Connection: what may be driven, and its busy flag.

cdef void* _pointer(object cdata, str attribute, object pointer_type) except NULL:
    """The address ``cdata`` (Connection.<attribute>) holds, if it is a ``pointer_type``."""
    if not isinstance(cdata, _CData) or _typeof(cdata) is not pointer_type:
        raise TypeError(f"Connection.{attribute} is {cdata!r}, not a cffi {pointer_type.cname}")
    cdef uintptr_t address = _cast(_UINTPTR, cdata)
    if address == 0:
        raise ValueError(f"Connection.{attribute} is a NULL pointer")
    return <void*>address


cdef object _check_connection(object connection, SSL** ssl, BIO** rbio, BIO** wbio):
    """
    Refuse anything but a memory-BIO Connection; give its SSL* and BIOs, and
    return the cffi SSL* object (keeping it keeps the SSL* and its BIOs alive).
    """
    if not _table_ready:
        raise RuntimeError("tlsfast engine used before its OpenSSL binding was installed")
    if not isinstance(connection, _Connection):
        raise TypeError(
            f"expected an OpenSSL.SSL.Connection, not {type(connection).__qualname__}")
    into_ssl = connection._into_ssl
    from_ssl = connection._from_ssl
    if into_ssl is None or from_ssl is None:
        raise TypeError(
            "TLSEngine needs a Connection made with bio=None (memory BIOs), "
            "not one bound to a socket")
    ssl_cdata = connection._ssl
    ssl[0] = <SSL*>_pointer(ssl_cdata, "_ssl", _SSL_POINTER)
    rbio[0] = <BIO*>_pointer(into_ssl, "_into_ssl", _BIO_POINTER)
    wbio[0] = <BIO*>_pointer(from_ssl, "_from_ssl", _BIO_POINTER)
    return ssl_cdata


cdef inline bint _handshake_finished(SSL* ssl) noexcept:
    cdef const char* state = F.SSL_state_string_long(ssl)
    return state != NULL and strcmp(state, HANDSHAKE_FINISHED_STATE) == 0


# The guard described in the module docstring.
cdef extern from *:
    """
    /* The calling thread's identity for the busy flag: the thread pointer
       where the compiler has it (one instruction, no call on the hot path),
       else CPython's thread id.  Both are never 0 and unique among running
       threads. */
    #if defined(__has_builtin) && (defined(__x86_64__) || defined(__aarch64__))
    #  if __has_builtin(__builtin_thread_pointer)
    #    define TLSFAST_THREAD_ID() ((unsigned long)(uintptr_t)__builtin_thread_pointer())
    #  endif
    #endif
    #ifndef TLSFAST_THREAD_ID
    #  define TLSFAST_THREAD_ID() PyThread_get_thread_ident()
    #endif
    """
    unsigned long _thread_id "TLSFAST_THREAD_ID"() noexcept


ctypedef struct BusyFlag:
    unsigned long owner             # thread inside a call that entered OpenSSL; 0: none
    const char* running             # that call's name (a string literal)
    bint drain_allowed              # outgoing() may run inside it (not inside send())


@cython.final
@cython.auto_pickle(False)
cdef class _BusyFlagHolder:
    """Keeps one SSL*'s BusyFlag; engines point into it."""
    cdef BusyFlag flag


cdef _BusyFlagHolder _busy_flag_of(object connection):
    """The Connection's flag, shared by all its engines (kept in its __dict__)."""
    cdef dict state = connection.__dict__
    holder = state.get("_tlsfast_busy")
    if type(holder) is not _BusyFlagHolder:
        holder = _BusyFlagHolder()
        state["_tlsfast_busy"] = holder
    return <_BusyFlagHolder>holder


cdef inline int _enter(BusyFlag* flag, const char* name, bint drain_allowed) except -1:
    if flag.owner != 0:
        _refuse(flag, name, False)
    flag.owner = _thread_id()
    flag.running = name
    flag.drain_allowed = drain_allowed
    return 0


cdef inline void _leave(BusyFlag* flag) noexcept:
    flag.owner = 0


cdef inline int _check_read(BusyFlag* flag, const char* name, bint drains) except -1:
    if flag.owner != 0 and (flag.owner != _thread_id()
                            or (drains and not flag.drain_allowed)):
        _refuse(flag, name, drains)
    return 0


cdef int _refuse(BusyFlag* flag, const char* name, bint drains) except -1:
    called = name.decode("ascii")
    running = flag.running.decode("ascii")
    if flag.owner != _thread_id():
        raise RuntimeError(
            f"TLSEngine is busy: {called} called from another thread while "
            f"{running} runs on the same Connection; drive an engine from one thread")
    if not drains:
        raise RuntimeError(
            f"TLSEngine is busy: {called} called from inside {running} on the same "
            "Connection (from one of its callbacks); OpenSSL cannot be re-entered")
    raise RuntimeError(
        f"TLSEngine is busy: {called} called from inside {running} on the same "
        f"Connection (from one of its callbacks); {running} returns the ciphertext "
        "queued before it, so taking later bytes now would reorder the stream")


cdef bytes _EMPTY = b""


# Results are bytes objects we create at an upper-bound size, read into, and
# shrink in place: they are handled as owned PyObject* until complete.
cdef extern from "Python.h":
    Py_ssize_t _reference_count "Py_REFCNT"(PyObject*) noexcept    # no temporary reference
    char* _bytes_data "PyBytes_AS_STRING"(PyObject*) noexcept

# Spare results (32 B to one record).  Each result is a fresh bytes: above
# pymalloc's 512 B it comes from glibc malloc, whose fast path (tcache) stops
# at 1,032 bytes, so a 1 KiB record's two results cost about 1,300
# instructions of malloc/free per message (callgrind; docs/benchmarks.md),
# and a 64 B record's two about 350 in pymalloc.  The module keeps the last
# few results of these sizes (not per engine: an idle connection holds
# none).  Once its caller has dropped one, so that the list's reference is
# the only one (nobody else can see the object), it is reused for the next
# result of about its size, as a bytes freelist would: size set, hash reset.
# At most SPARES * SPARE_MAX bytes stay allocated for the whole process.
# The list is only touched while holding the GIL, like the busy flag (a
# free-threaded build would need per-thread lists); the module is loaded into
# one interpreter only (Cython's module init refuses a second), so no object
# crosses interpreters.
cdef extern from *:
    """
    #define TLSFAST_SPARES 4
    #define TLSFAST_SPARE_MIN 32              /* (far from the 0- and 1-byte singletons) */
    #define TLSFAST_SPARE_MAX (16384 + 1088)  /* one record and its overhead */
    /* (a reuse leaves at most half its block unused) */
    static PyObject *tlsfast_spare[TLSFAST_SPARES];
    static Py_ssize_t tlsfast_spare_capacity[TLSFAST_SPARES];
    static unsigned int tlsfast_spare_next;

    /* Make a bytes for ``n`` bytes to be written into (new reference). */
    static PyObject *tlsfast_new_result(Py_ssize_t n) {
        PyObject *b;
        int i, victim = -1;
        if (n < TLSFAST_SPARE_MIN || n > TLSFAST_SPARE_MAX)
            return PyBytes_FromStringAndSize(NULL, n);
        for (i = 0; i < TLSFAST_SPARES; i++) {
            b = tlsfast_spare[i];
            if (b == NULL) {
                if (victim < 0) victim = i;
                continue;
            }
            if (Py_REFCNT(b) != 1)
                continue;               /* still in use out there */
            if (tlsfast_spare_capacity[i] >= n
                    && (tlsfast_spare_capacity[i] - n) * 2 <= tlsfast_spare_capacity[i]) {
                Py_SET_SIZE(b, n);
                PyBytes_AS_STRING(b)[n] = '\0';
                ((PyBytesObject *)b)->ob_shash = -1;
                Py_INCREF(b);
                return b;
            }
            if (victim < 0) victim = i;   /* idle, but not this size */
        }
        b = PyBytes_FromStringAndSize(NULL, n);
        if (b == NULL)
            return NULL;
        if (victim < 0)
            victim = (int)(tlsfast_spare_next++ % TLSFAST_SPARES);
        Py_INCREF(b);
        Py_XSETREF(tlsfast_spare[victim], b);
        tlsfast_spare_capacity[victim] = n;
        return b;
    }

    /* _PyBytes_Resize of a result (which needs the only reference): take
       it off the spare list first. */
    static int tlsfast_resize_result(PyObject **b, Py_ssize_t n) {
        int i;
        for (i = 0; i < TLSFAST_SPARES; i++) {
            if (tlsfast_spare[i] == *b) {
                tlsfast_spare[i] = NULL;
                Py_DECREF(*b);
            }
        }
        return _PyBytes_Resize(b, n);
    }

    /* How many spare results are held, and how many of them are idle. */
    static Py_ssize_t tlsfast_spares_held(int idle_only) {
        Py_ssize_t held = 0;
        int i;
        for (i = 0; i < TLSFAST_SPARES; i++)
            if (tlsfast_spare[i] != NULL && (!idle_only || Py_REFCNT(tlsfast_spare[i]) == 1))
                held++;
        return held;
    }
    """
    PyObject* _new_bytes "tlsfast_new_result"(Py_ssize_t) except NULL
    int _resize_bytes "tlsfast_resize_result"(PyObject**, Py_ssize_t) except -1
    Py_ssize_t _spares_held "tlsfast_spares_held"(int) noexcept


def _spare_results():
    """(held, idle): the spare results the module keeps (for tests)."""
    return _spares_held(0), _spares_held(1)

cdef extern from *:
    """
    /* Shorten a bytes object nobody else has seen yet, keeping its block:
       cheaper than a realloc when only a few bytes (record overhead) are
       left over.  Its hash has never been computed (fresh object). */
    static inline void tlsfast_truncate_fresh_bytes(PyObject *b, Py_ssize_t n) {
        Py_SET_SIZE(b, n);
        PyBytes_AS_STRING(b)[n] = '\0';
    }
    """
    void _truncate_fresh_bytes "tlsfast_truncate_fresh_bytes"(PyObject*, Py_ssize_t) noexcept

# Up to this many unused bytes are left in a result's block instead of
# reallocating it (typically TLS record overhead: 22-29 bytes per record).
DEF TRUNCATE_SLACK = 1024


cdef inline int _finish_bytes(PyObject** raw, Py_ssize_t capacity, Py_ssize_t total) except -1:
    if total == capacity:
        return 0
    if capacity - total <= TRUNCATE_SLACK:
        _truncate_fresh_bytes(raw[0], total)
        return 0
    return _resize_bytes(raw, total)


# Input buffers.  Most callers pass bytes: its data is read in place, without
# the buffer protocol's fill-in and release (about 70 instructions a call);
# the caller's reference keeps the bytes alive for the call.  Returns 1 when
# the view must be given back with PyBuffer_Release, 0 when not.
cdef inline int _get_input(object data, Py_buffer* view) except -1:
    if PyBytes_CheckExact(data):
        view.buf = PyBytes_AS_STRING(data)
        view.len = PyBytes_GET_SIZE(data)
        return 0
    PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    return 1


cdef inline Py_ssize_t _mem_pending(BIO* bio) noexcept nogil:
    cdef char* unused
    cdef long n = F.BIO_get_mem_data(bio, &unused)
    return n if n > 0 else 0


# ---------------------------------------------------------------------------

# The Context's callback helpers whose kept exceptions
# Connection._raise_ssl_error raises first, whatever OpenSSL returned.
cdef tuple _CALLBACK_HELPERS = ("_verify_helper", "_alpn_select_helper", "_ocsp_helper")
cdef object _MISSING = object()


cdef bint _callbacks_quiet(object connection) except -1:
    """
    True when no callback of ``connection``'s Context keeps an exception for
    _raise_ssl_error to raise; False when one does, or when pyOpenSSL's
    internals are not as expected (then its own _raise_ssl_error decides).
    """
    context = getattr(connection, "_context", _MISSING)
    if context is _MISSING:
        return False
    for name in _CALLBACK_HELPERS:
        helper = getattr(context, name, _MISSING)
        if helper is None:
            continue
        if helper is _MISSING or getattr(helper, "_problems", True):
            return False
    return True


# no_gc_clear: the engine holds raw pointers into the SSL* that _ssl_cdata
# keeps alive; a cycle collection must not drop it before the engine goes.
@cython.no_gc_clear
cdef class TLSEngine:
    """
    Sans-IO TLS record engine bound to a pyOpenSSL ``Connection`` that was
    made with ``bio=None`` (memory BIOs).  The engine keeps a strong reference
    to the Connection, so the SSL* outlives it.  Configure the Connection
    (``set_connect_state``/``set_accept_state``, SNI, ALPN) before binding,
    or bind it after pyOpenSSL finished the handshake: the engine starts in
    the state OpenSSL is in.  Not re-entrant, one thread at a time: misuse
    raises RuntimeError (module docstring).
    """
    # (Its cdef methods are final: called directly, not through a vtable, so
    # the C compiler can inline them into the hot paths.)

    cdef readonly object connection
    cdef object _ssl_cdata          # the cffi SSL* (what _raise_ssl_error takes)
    cdef SSL* _ssl
    cdef BIO* _rbio                 # ciphertext from the peer into OpenSSL
    cdef BIO* _wbio                 # ciphertext from OpenSSL for the peer
    cdef bint _handshake_done
    cdef bint _eof                  # the transport reported end of file
    cdef bint _drained              # the last read left nothing decrypted inside
                                    # OpenSSL (a sizing hint: saves an SSL_pending)
    cdef bint _bio_buffers_due      # handshake done: empty the grown BIOs (_release_bio_buffers)
    cdef Py_ssize_t _rbio_known     # bytes in the rbio, when known without asking
                                    # (-1: unknown; a sizing hint: saves a
                                    # BIO_get_mem_data per receive())
    # Byte counters (free to keep in C; read by tlsfast.options.connectionInfo)
    cdef readonly unsigned long long ciphertext_received, ciphertext_sent
    cdef readonly unsigned long long plaintext_received, plaintext_sent
    cdef object _deferred_error     # raised by the next receive()
    cdef list _unsent               # plaintext waiting for the handshake (None:
                                    # none; made on demand to keep idle
                                    # connections small)
    cdef _BusyFlagHolder _busy_holder   # the Connection's flag, shared with its
    cdef BusyFlag* _busy                # other engines, and a pointer into it

    def __cinit__(self, connection):
        self._ssl_cdata = _check_connection(connection, &self._ssl, &self._rbio, &self._wbio)
        self._busy_holder = _busy_flag_of(connection)
        self._busy = &self._busy_holder.flag
        self.connection = connection
        self._handshake_done = _handshake_finished(self._ssl)
        self._rbio_known = -1
        self._deferred_error = None
        self._unsent = None

    # -- state queries ------------------------------------------------------

    @property
    def handshake_done(self):
        """True once the handshake has completed."""
        return self._handshake_done

    @property
    def peer_closed(self):
        """True once the peer's close_notify has been received."""
        _check_read(self._busy, "peer_closed", False)
        return (F.SSL_get_shutdown(self._ssl) & SSL_RECEIVED_SHUTDOWN) != 0

    @property
    def close_sent(self):
        """True once our close_notify has been generated."""
        _check_read(self._busy, "close_sent", False)
        return (F.SSL_get_shutdown(self._ssl) & SSL_SENT_SHUTDOWN) != 0

    @property
    def plaintext_pending(self):
        """Decrypted bytes OpenSSL holds that receive() has not returned yet."""
        _check_read(self._busy, "plaintext_pending", False)
        return F.SSL_pending(self._ssl)

    @property
    def outgoing_pending(self):
        """Ciphertext bytes waiting to be taken with outgoing()."""
        _check_read(self._busy, "outgoing_pending", False)
        return _mem_pending(self._wbio)

    @property
    def deferred_error(self):
        """The error the next receive() will raise, or None."""
        return self._deferred_error

    def take_deferred_error(self):
        """Return the error receive() kept back (or None), and forget it."""
        error = self._deferred_error
        self._deferred_error = None
        return error

    @property
    def unsent_plaintext(self):
        """Bytes given to send() that wait for the handshake to finish."""
        return sum(len(chunk) for chunk in self._unsent or ())

    # -- error translation (cold path) ---------------------------------------

    @cython.final
    cdef object _translate_error(self, int result):
        """The exception pyOpenSSL raises for ``result``, or None (want-read)."""
        cdef int saved_errno = errno
        if ((result == 1 or F.SSL_get_error(self._ssl, result) == SSL_ERROR_WANT_READ)
                and _callbacks_quiet(self.connection)):
            # What pyOpenSSL would conclude (nothing, or WantReadError), without
            # its Python call and exception: once per handshake flight.
            F.ERR_clear_error()
            return None
        try:
            # pyOpenSSL reads errno from cffi's saved copy: give it ours.
            _ffi.errno = saved_errno
            self.connection._raise_ssl_error(self._ssl_cdata, result)
        except _WantReadError:
            return None
        except Exception as exc:
            return exc
        finally:
            F.ERR_clear_error()
        return None

    @cython.final
    cdef inline int _raise_deferred(self) except -1:
        error = self._deferred_error
        if error is not None:
            self._deferred_error = None
            raise error
        return 0

    # -- handshake ----------------------------------------------------------

    def do_handshake(self):
        """
        Advance the handshake (a client calls this once to produce its
        ClientHello; receive() drives it afterwards).  Returns True once the
        handshake is complete, False while it needs more data from the peer;
        raises what pyOpenSSL's do_handshake would raise on failure.
        """
        _enter(self._busy, "do_handshake()", True)
        try:
            self._raise_deferred()
            return self._handshake()
        finally:
            _leave(self._busy)

    @cython.final
    cdef bint _handshake(self) except -1:
        if self._handshake_done:
            return True
        self._drained = False
        self._rbio_known = -1
        cdef int rc = F.SSL_do_handshake(self._ssl)
        # Exactly pyOpenSSL's do_handshake: _raise_ssl_error runs even on
        # success, to surface exceptions stored by verify/ALPN callbacks.
        error = self._translate_error(rc)
        if error is not None:
            raise error
        if rc != 1:
            return False
        self._handshake_done = True
        self._bio_buffers_due = True
        self._flush_unsent()
        return True

    @cython.final
    cdef int _flush_unsent(self) except -1:
        unsent = self._unsent
        self._unsent = None
        if unsent is None:
            return 0
        cdef Py_ssize_t i
        for i in range(len(unsent)):
            self._write_all(unsent[i])
            if self._unsent:
                # blocked again (renegotiation): keep the rest, in order
                self._unsent.extend(unsent[i + 1:])  # _write made it a list
                break
        return 0

    # -- incoming -----------------------------------------------------------

    def receive(self, ciphertext):
        """
        Feed ciphertext from the peer; return all plaintext now available as
        one bytes object (b"" when more data is needed).  Drives the handshake
        while it is in progress.  Anything OpenSSL wants to send in reply is
        collected by outgoing().
        """
        cdef Py_buffer view
        cdef bint acquired = _get_input(ciphertext, &view)
        try:
            return self._receive(<const char*>view.buf, view.len)
        finally:
            if acquired:
                PyBuffer_Release(&view)

    @cython.final
    cdef object _receive(self, const char* data, Py_ssize_t length):
        """receive() of ``length`` bytes at ``data`` (also the record loop's)."""
        _enter(self._busy, "receive()", True)
        try:
            self._raise_deferred()
            self._feed(data, length)
            if not self._handshake_done and not self._handshake():
                return _EMPTY
            plaintext = self._read_plaintext()
            if self._unsent:
                self._flush_unsent()
            return plaintext
        finally:
            _leave(self._busy)

    def receive_eof(self):
        """
        The transport reached end of file: no more ciphertext will come.
        Returns remaining plaintext; raises what pyOpenSSL raises for the EOF
        (ZeroReturnError after close_notify, SysCallError otherwise).
        """
        _enter(self._busy, "receive_eof()", True)
        try:
            self._raise_deferred()
            self._eof = True
            F.BIO_set_mem_eof_return(self._rbio, 0)
            if not self._handshake_done and not self._handshake():
                return _EMPTY
            return self._read_plaintext()
        finally:
            _leave(self._busy)

    @cython.final
    cdef int _feed(self, const char* data, Py_ssize_t length) except -1:
        cdef int chunk, written
        while length > 0:
            chunk = <int>(length if length < INT_MAX else INT_MAX)
            written = F.BIO_write(self._rbio, data, chunk)
            if written <= 0:
                F.ERR_clear_error()
                raise MemoryError("BIO_write into the memory BIO failed")
            data += written
            length -= written
            self.ciphertext_received += written
            if self._rbio_known >= 0:
                self._rbio_known += written
        return 0

    @cython.final
    cdef object _read_plaintext(self):
        # Plaintext is never longer than the ciphertext it came from, so the
        # rbio's contents plus what OpenSSL already decrypted bound the result.
        # One extra byte lets SSL_read report EOF/errors when both are empty.
        # (Only a bound for the first allocation: the loop grows the result if
        # OpenSSL holds more, so a stale _drained or _rbio_known costs a
        # resize, not data.)
        cdef Py_ssize_t capacity = (
            self._rbio_known if self._rbio_known >= 0 else _mem_pending(self._rbio)) + 1
        self._rbio_known = -1
        if not self._drained:
            capacity += F.SSL_pending(self._ssl)
        cdef Py_ssize_t total = 0
        cdef int rc, want, status
        cdef PyObject* raw = _new_bytes(capacity)
        try:
            while True:
                if total == capacity:
                    capacity = total + _mem_pending(self._rbio) + F.SSL_pending(self._ssl) + RECORD_PLAINTEXT
                    _resize_bytes(&raw, capacity)
                want = <int>(capacity - total if capacity - total < INT_MAX else INT_MAX)
                rc = F.SSL_read(self._ssl, _bytes_data(raw) + total, want)
                if rc > 0:
                    total += rc
                    if (not self._eof and _mem_pending(self._rbio) == 0
                            and F.SSL_pending(self._ssl) == 0):
                        # Nothing left to decrypt: SSL_read would only say
                        # want-read.  (Read-ahead, which could hide records
                        # inside OpenSSL, cannot be enabled through this
                        # binding: it exposes no SSL_CTX_set_read_ahead.)
                        self._drained = True
                        self._rbio_known = 0
                        break
                    continue
                status = F.SSL_get_error(self._ssl, rc)
                if status == SSL_ERROR_WANT_READ:
                    self._drained = True
                    break
                self._drained = False
                error = self._translate_error(rc)
                if error is None:
                    break
                if total == 0:
                    raise error
                self._deferred_error = error
                break
            if total == 0:
                return _EMPTY
            self.plaintext_received += total
            _finish_bytes(&raw, capacity, total)
            return <object>raw
        finally:
            Py_XDECREF(raw)

    # -- outgoing -----------------------------------------------------------

    def send(self, plaintext):
        """
        Encrypt ``plaintext`` (bytes, bytearray, memoryview; any size) and
        return all ciphertext to send, including anything queued before it.
        Before the handshake completes the plaintext is kept and encrypted as
        soon as it does (collect it then with outgoing()).  An error kept back
        by receive() is not raised here: it belongs to the read side (a reply
        after the peer's close_notify is legal).
        """
        cdef Py_buffer view
        cdef bint acquired
        _enter(self._busy, "send()", False)
        try:
            if not self._handshake_done or self._unsent:
                if len(plaintext):
                    self._keep_unsent(bytes(plaintext))
                return self._take_outgoing()
            acquired = _get_input(plaintext, &view)
            try:
                if view.len <= WRITE_ROUND:
                    # Common case: encrypt everything, then size the result exactly.
                    self._write(<const char*>view.buf, view.len)
                    return self._take_outgoing()
                return self._send_large(<const char*>view.buf, view.len)
            finally:
                if acquired:
                    PyBuffer_Release(&view)
        finally:
            _leave(self._busy)

    @cython.final
    cdef int _encrypt(self, const char* data, Py_ssize_t length) except -1:
        """
        send() of at most WRITE_ROUND bytes that leaves the ciphertext in the
        wbio, for the record loop to send with what else is queued.
        """
        _enter(self._busy, "send()", False)
        try:
            if not self._handshake_done or self._unsent:
                if length:
                    self._keep_unsent(PyBytes_FromStringAndSize(data, length))
                return 0
            return self._write(data, length)
        finally:
            _leave(self._busy)

    def outgoing(self):
        """Return (and consume) all ciphertext OpenSSL has queued for the peer."""
        _check_read(self._busy, "outgoing()", True)
        return self._take_outgoing()

    @cython.final
    cdef object _take_outgoing(self):
        cdef Py_ssize_t pending = _mem_pending(self._wbio)
        if pending == 0:
            return _EMPTY
        cdef PyObject* raw = _new_bytes(pending)
        cdef Py_ssize_t got
        try:
            got = self._drain(_bytes_data(raw), pending)
            if got != pending:
                _resize_bytes(&raw, got)
            return <object>raw
        finally:
            Py_XDECREF(raw)

    @cython.final
    cdef int _keep_unsent(self, bytes chunk) except -1:
        if self._unsent is None:
            self._unsent = []
        self._unsent.append(chunk)
        return 0

    @cython.final
    cdef int _write_all(self, bytes chunk) except -1:
        return self._write(PyBytes_AS_STRING(chunk), len(chunk))

    @cython.final
    cdef int _write(self, const char* data, Py_ssize_t length) except -1:
        # pyOpenSSL sets SSL_MODE_ENABLE_PARTIAL_WRITE, so SSL_write returns
        # after each record: loop here, in C.
        cdef int rc, chunk
        while length > 0:
            chunk = <int>(length if length < INT_MAX else INT_MAX)
            rc = F.SSL_write(self._ssl, data, chunk)
            if rc > 0:
                data += rc
                length -= rc
                self.plaintext_sent += rc
                continue
            error = self._translate_error(rc)
            if error is None:
                # want-read: a TLS 1.2 renegotiation holds writes back.  Keep
                # the rest; it goes out after the next receive().
                self._keep_unsent(PyBytes_FromStringAndSize(data, length))
                return 0
            raise error
        return 0

    @cython.final
    cdef Py_ssize_t _drain(self, char* buffer, Py_ssize_t room) except -1:
        """Read up to ``room`` bytes of queued ciphertext into ``buffer``."""
        cdef Py_ssize_t total = 0
        cdef int rc, want
        while total < room:
            want = <int>(room - total if room - total < INT_MAX else INT_MAX)
            rc = F.BIO_read(self._wbio, buffer + total, want)
            if rc <= 0:
                break
            total += rc
        self.ciphertext_sent += total
        if self._bio_buffers_due:
            self._release_bio_buffers()
        return total

    @cython.final
    cdef int _release_bio_buffers(self) except -1:
        """
        After the handshake, once both memory BIOs are drained, give the SSL*
        a new empty pair: a mem BIO keeps the capacity its largest content
        needed (BUF_MEM never shrinks), about 1.9 KB per idle server
        connection after its flight and tickets (docs/benchmarks.md, "Proxy
        idle memory").  Only outside any call into OpenSSL (SSL_set_bio frees
        the old pair), and only while this engine is the Connection's one
        engine: the busy-flag holder is referenced by the Connection's
        __dict__ and by each engine, which caches the BIO pointers.
        """
        if self._busy.owner != 0:
            return 0                        # inside a call: the next drain retries
        if self._eof or _reference_count(<PyObject*>self._busy_holder) != 2:
            self._bio_buffers_due = False   # nothing to gain, or not ours alone
            return 0
        if _mem_pending(self._rbio) != 0 or _mem_pending(self._wbio) != 0:
            return 0
        into_ssl = _lib.BIO_new(_lib.BIO_s_mem())
        if into_ssl == _ffi.NULL:
            return 0
        from_ssl = _lib.BIO_new(_lib.BIO_s_mem())
        if from_ssl == _ffi.NULL:
            _lib.BIO_free(into_ssl)
            return 0
        self._bio_buffers_due = False
        _lib.SSL_set_bio(self._ssl_cdata, into_ssl, from_ssl)   # frees the old pair
        connection = self.connection
        connection._into_ssl = into_ssl     # what pyOpenSSL's bio_read/bio_write use
        connection._from_ssl = from_ssl
        self._rbio = <BIO*>_pointer(into_ssl, "_into_ssl", _BIO_POINTER)
        self._wbio = <BIO*>_pointer(from_ssl, "_from_ssl", _BIO_POINTER)
        self._rbio_known = 0
        return 0

    @cython.final
    cdef object _send_large(self, const char* data, Py_ssize_t length):
        cdef Py_ssize_t records = length // RECORD_PLAINTEXT + 2
        cdef Py_ssize_t capacity = _mem_pending(self._wbio) + length + records * RECORD_OVERHEAD
        cdef Py_ssize_t total = 0, pending, round_length
        cdef PyObject* raw = _new_bytes(capacity)
        try:
            while True:
                pending = _mem_pending(self._wbio)
                if total + pending > capacity:
                    capacity = total + pending + length + (length // RECORD_PLAINTEXT + 2) * RECORD_OVERHEAD
                    _resize_bytes(&raw, capacity)
                total += self._drain(_bytes_data(raw) + total, pending)
                if length == 0 or self._unsent:
                    break
                round_length = length if length < WRITE_ROUND else WRITE_ROUND
                self._write(data, round_length)
                data += round_length
                length -= round_length
                if self._unsent and length:
                    # renegotiation in progress: keep the remainder in order
                    self._keep_unsent(PyBytes_FromStringAndSize(data, length))
                    length = 0
            _finish_bytes(&raw, capacity, total)
            return <object>raw
        finally:
            Py_XDECREF(raw)

    # -- shutdown -----------------------------------------------------------

    def shutdown(self):
        """
        Send close_notify (collect it with outgoing()).  Returns True when the
        peer's close_notify has already been received too, as pyOpenSSL's
        Connection.shutdown does.
        """
        cdef int rc
        _enter(self._busy, "shutdown()", True)
        try:
            rc = F.SSL_shutdown(self._ssl)
            if rc < 0:
                error = self._translate_error(rc)
                if error is not None:
                    raise error
                return False
            return rc > 0
        finally:
            _leave(self._busy)


# ---------------------------------------------------------------------------
# The established connection's loop: socket -> engine -> application -> socket.

include "record_loop.pxi"


# ---------------------------------------------------------------------------
# The C reference loop: the limit the engine is measured against.

def reference_transfer(client, server, Py_ssize_t write_size, Py_ssize_t total):
    """
    Move ``total`` bytes of application data from ``client`` to ``server``
    (two handshaken pyOpenSSL Connections with memory BIOs) in writes of
    ``write_size``, entirely in C without the GIL: SSL_write, BIO_read of the
    ciphertext, BIO_write into the server, SSL_read.  Benchmarks only.
    Returns the number of plaintext bytes the server decrypted.  Both
    Connections are busy meanwhile, for their engines too (module docstring).
    """
    cdef SSL *client_ssl
    cdef SSL *server_ssl
    cdef BIO *client_in
    cdef BIO *client_out
    cdef BIO *server_in
    cdef BIO *server_out
    # (the cdata objects keep the SSL*s alive while the GIL is released)
    client_cdata = _check_connection(client, &client_ssl, &client_in, &client_out)
    server_cdata = _check_connection(server, &server_ssl, &server_in, &server_out)
    if client_ssl == server_ssl:
        raise ValueError("client and server must be two different Connections")
    if write_size <= 0 or write_size > INT_MAX // 2 or total < 0:
        raise ValueError("write_size must be in 1..2**30 and total >= 0")
    cdef _BusyFlagHolder client_holder = _busy_flag_of(client)
    cdef _BusyFlagHolder server_holder = _busy_flag_of(server)
    cdef BusyFlag* client_busy = &client_holder.flag
    cdef BusyFlag* server_busy = &server_holder.flag
    _enter(client_busy, "reference_transfer()", False)
    try:
        _enter(server_busy, "reference_transfer()", False)
        try:
            return _reference_loop(client_ssl, client_out, server_ssl, server_in,
                                   write_size, total)
        finally:
            _leave(server_busy)
    finally:
        _leave(client_busy)


cdef Py_ssize_t _reference_loop(SSL* client_ssl, BIO* client_out, SSL* server_ssl,
                                BIO* server_in, Py_ssize_t write_size,
                                Py_ssize_t total) except -1:
    cdef Py_ssize_t transfer_size = write_size + 64 * 1024
    cdef char* message = <char*>malloc(write_size)
    cdef char* transfer = <char*>malloc(transfer_size)
    cdef char* plaintext = <char*>malloc(transfer_size)
    cdef Py_ssize_t sent = 0, received = 0
    cdef int rc, n, offset
    cdef bint failed = False
    if message == NULL or transfer == NULL or plaintext == NULL:
        free(message); free(transfer); free(plaintext)
        raise MemoryError()
    with nogil:
        for n in range(write_size):
            message[n] = <char>(n & 0xFF)
        while sent < total and not failed:
            n = <int>(write_size if total - sent > write_size else total - sent)
            offset = 0
            while offset < n:
                rc = F.SSL_write(client_ssl, message + offset, n - offset)
                if rc <= 0:
                    failed = True
                    break
                offset += rc
            sent += n
            while True:
                rc = F.BIO_read(client_out, transfer, <int>transfer_size)
                if rc <= 0:
                    break
                if F.BIO_write(server_in, transfer, rc) != rc:
                    failed = True
                    break
            while True:
                rc = F.SSL_read(server_ssl, plaintext, <int>transfer_size)
                if rc <= 0:
                    if F.SSL_get_error(server_ssl, rc) != SSL_ERROR_WANT_READ:
                        failed = True
                    break
                received += rc
        F.ERR_clear_error()
    free(message); free(transfer); free(plaintext)
    if failed:
        raise RuntimeError("reference transfer failed inside OpenSSL")
    return received
