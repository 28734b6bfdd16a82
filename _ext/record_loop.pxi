# Included by _engine.pyx: the established connection's record loop.
#
# Theory of operation
# -------------------
# A RecordLoop serves one Twisted TLS protocol (tlsfast's
# BufferingTLSTransport, in tlsfast._foreign.twistedtls).  It is two things:
#
# 1. The protocol's small-write aggregator: Twisted's _AggregateSmallWrites
#    contract (write / flush / close; writes outside a delivery are joined and
#    written at the next reactor turn, or at once past max_buffer bytes).
#
# 2. The established connection's loop.  Given the socket (use_socket(), by
#    the seam module tlsfast._foreign.twistedtcp, which also makes doRead()
#    the TCP transport's), one read event runs in C:
#
#        recv() into a reusable buffer -> BIO_write -> SSL_read (the engine)
#        -> the application's dataReceived(plaintext)     (one Python call)
#        -> what it wrote meanwhile: joined, SSL_write into the wbio
#        -> BIO_read -> send() on the socket
#
#    Writes made during the delivery are only buffered; they are encrypted
#    and sent when dataReceived returns: no aggregator flush, callLater(0) or
#    extra reactor turn.  Ciphertext goes straight to the socket only while
#    the TCP transport's own write queue is empty (the probe names, from the
#    seam, say how to tell); otherwise, and for whatever the kernel does not
#    take, it is handed to transport.write(), so order, back-pressure and
#    close stay Twisted's.
#
# The loop owns no connection state.  "Established" is the protocol's
# _established attribute (the engine while the handshake is done and no
# close, abort or loss has begun; None otherwise).  Every read event, and
# every state the loop does not handle, goes to the protocol's Python code:
#
#     not established          -> protocol.dataReceived(bytes)  (general path)
#     engine raised error_type -> receive_failed(protocol) /
#                                 send_failed(protocol), called inside the
#                                 except block (Failure() works)
#     error kept back, or the state changed during receive
#                              -> deliver_general(protocol, plaintext)
#
# (The protocol's methods are given as functions, called with the protocol:
# a bound method per connection would cost memory on every idle one.)
#
# 3. A relay (tlsfast proxy).  relay_to() links two SocketEnds: a RecordLoop
#    (TLS) or a PlainRelay (plain TCP, which reads its socket the same way).
#    Plaintext that arrives on one goes to the other's take() in C instead
#    of to an application: PlainRelay.take sends it, RecordLoop.take
#    encrypts it straight from the recv buffer into the wbio and sends it.
#    Flow control stays Twisted's producers': what a socket does not take
#    goes through the transport's write(), which pauses the other side.
#    Counters (relayed, last_relayed) let the proxy see the traffic.
#
# The recv buffer is shared by all loops: it is only used between recv() and
# the copy into the rbio (or into a bytes object), with no Python code in
# between, so a delivery that runs another loop cannot clobber it.  The same
# holds for the send buffer, between BIO_read and send().

cdef extern from "errno.h" nogil:
    int EAGAIN
    int EWOULDBLOCK
    int EINTR

cdef extern from "sys/socket.h" nogil:
    ssize_t recv(int fd, void* buffer, size_t length, int flags)
    ssize_t send(int fd, const void* buffer, size_t length, int flags)
    int MSG_NOSIGNAL

DEF IO_BUFFER = 256 * 1024
cdef char _recv_buffer[IO_BUFFER]
cdef char _send_buffer[IO_BUFFER]


cdef extern from "time.h" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clock, timespec* now)
    int CLOCK_REALTIME


# The protocol's attributes the loop reads on every record.  Twisted's
# ProtocolWrapper defines __getattr__ (missing names go to the wrapped
# protocol), so each read goes through slot_tp_getattr_hook: two more type
# lookups and a call around the generic read (about 1,000 instructions of a
# 1 KiB record's 25,000 in the glue pair, callgrind).  While the protocol's
# class keeps object's __getattribute__, the generic read answers the same
# for every attribute the protocol has; only a missing one takes the full
# path, __getattr__ included.
cdef extern from *:
    """
    static PyObject *tlsfast_attribute(PyObject *obj, PyObject *name, int generic) {
        if (generic) {
            PyObject *value = PyObject_GenericGetAttr(obj, name);
            if (value != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError))
                return value;
            PyErr_Clear();
        }
        return PyObject_GetAttr(obj, name);
    }
    """
    object _attribute "tlsfast_attribute"(object, object, bint)


cdef inline double _wall_clock() noexcept nogil:
    """time.time(), which is what a real reactor's seconds() returns."""
    cdef timespec now
    clock_gettime(CLOCK_REALTIME, &now)
    return <double>now.tv_sec + <double>now.tv_nsec * 1e-9


@cython.auto_pickle(False)
cdef class SocketEnd:
    """
    One connection's socket, as the record loop and the relay use it: the
    fd and its TCP transport, recv() into the shared buffer, send() while the
    transport's queue is empty (else its write()), and where plaintext read
    here is relayed to (relay_to).  Subclasses say what arriving bytes are
    (ciphertext: RecordLoop; plaintext: PlainRelay) and what take() does
    with plaintext relayed to them.
    """
    cdef int fd                     # -1: none
    cdef object transport
    cdef Py_ssize_t read_size
    cdef tuple writable_names       # each true on the transport: may send now
    cdef tuple queued_names         # each false on the transport: may send now
    cdef str buffer_name            # ... and len(buffer) == offset
    cdef str offset_name
    cdef object done                # doRead's results for EOF and a failed recv
    cdef object lost
    cdef SocketEnd relay            # where plaintext that arrives here goes, or None
    cdef readonly unsigned long long relayed    # plaintext bytes handed to it
    cdef readonly double last_relayed           # time.time() of the last

    def __cinit__(self):
        self.fd = -1

    def use_socket(self, transport, int fd, Py_ssize_t read_size, tuple writable_names,
                   tuple queued_names, str buffer_name, str offset_name, done, lost):
        """
        Read and write ``fd``, the socket of ``transport`` (a TCP transport
        whose doRead is now this object's): recv() up to ``read_size`` bytes
        per read event, answer EOF with ``done`` and a failed recv() with
        ``lost``, and send() directly while the probe names say the
        transport's write queue is empty (module comment).
        """
        if fd < 0 or read_size <= 0:
            raise ValueError(f"bad socket {fd} or read size {read_size}")
        self.transport = transport
        self.fd = fd
        self.read_size = read_size if read_size < IO_BUFFER else IO_BUFFER
        self.writable_names = writable_names
        self.queued_names = queued_names
        self.buffer_name = buffer_name
        self.offset_name = offset_name
        self.done = done
        self.lost = lost

    def release_socket(self):
        """Stop using the socket (the transport is gone or going)."""
        self.fd = -1
        self.transport = None

    def relay_to(self, SocketEnd target):
        """
        From now on, plaintext arriving here goes to ``target.take()`` in C
        instead of to the application (None: to the application again).
        """
        self.relay = target

    cdef int take(self, const char* data, Py_ssize_t length) except -1:
        """Send ``length`` bytes of plaintext relayed from another connection."""
        raise NotImplementedError

    cdef object _read_event(self):
        """doRead's work (Twisted's contract: None, or why the connection ended)."""
        raise NotImplementedError

    def doRead(self):
        """The TCP transport's doRead (Twisted's contract: None, or why it ended)."""
        return self._read_event()

    cdef inline int _relay(self, const char* data, Py_ssize_t length) except -1:
        self.relayed += <unsigned long long>length
        self.last_relayed = _wall_clock()
        return self.relay.take(data, length)

    cdef object _recv(self):
        """recv() into the shared buffer: its length (> 0), or doRead's result."""
        cdef ssize_t n
        while True:
            n = recv(self.fd, _recv_buffer, <size_t>self.read_size, 0)
            if n > 0:
                return n
            if n == 0:
                return self.done
            if errno == EINTR:
                continue
            if errno == EAGAIN or errno == EWOULDBLOCK:
                return None
            return self.lost

    cdef Py_ssize_t _send_all(self, const char* data, Py_ssize_t length) except -1:
        """send() until done, full or failed; how much went."""
        cdef Py_ssize_t offset = 0
        cdef ssize_t sent
        while offset < length:
            sent = send(self.fd, data + offset, <size_t>(length - offset), MSG_NOSIGNAL)
            if sent > 0:
                offset += sent
            elif sent < 0 and errno == EINTR:
                continue
            else:
                break   # full, or failed: Twisted's queue takes the rest (and meets the error)
        return offset

    cdef int _send_or_queue(self, const char* data, Py_ssize_t length) except -1:
        """Send ``data``: at once while the transport's queue is empty, the rest through its write()."""
        cdef Py_ssize_t sent = 0
        if self.fd >= 0 and self._queue_empty():
            sent = self._send_all(data, length)
            if sent == length:
                return 0
        self._queue(PyBytes_FromStringAndSize(data + sent, length - sent))
        return 0

    cdef int _queue(self, bytes data) except -1:
        """Hand ``data`` to the transport's own write queue."""
        self.transport.write(data)
        return 0

    cdef bint _queue_empty(self) except -1:
        transport = self.transport
        for name in self.writable_names:
            if not getattr(transport, name):
                return False
        for name in self.queued_names:
            if getattr(transport, name):
                return False
        return len(getattr(transport, self.buffer_name)) == getattr(transport, self.offset_name)


@cython.final
@cython.auto_pickle(False)
cdef class PlainRelay(SocketEnd):
    """
    The plain TCP side of a relay: its doRead recv()s and, while relaying,
    hands the bytes to the other side's take() in C (else to
    ``protocol.dataReceived``, as Twisted would); take() sends what the
    other side relays here.
    """
    cdef object protocol

    def __init__(self, protocol):
        self.protocol = protocol

    cdef object _read_event(self):
        if self.fd < 0:
            return None
        result = self._recv()
        if type(result) is not int:
            return result
        cdef Py_ssize_t n = result
        if self.relay is not None:
            self._relay(_recv_buffer, n)
        else:
            self.protocol.dataReceived(PyBytes_FromStringAndSize(_recv_buffer, n))
        return None

    cdef int take(self, const char* data, Py_ssize_t length) except -1:
        if self.transport is None:
            return 0    # the connection is gone: nowhere to go (as the relay's discard)
        return self._send_or_queue(data, length)


@cython.final
@cython.auto_pickle(False)
cdef class RecordLoop(SocketEnd):
    """
    The record loop (and, for BufferingTLSTransport, the small-write
    aggregator) of one TLS protocol (the module comment above).  It is the
    protocol's write and dataReceived; Python code also reaches it through
    Twisted's aggregator interface (flush, close), bind(), use_socket(),
    deliver(), send_outgoing(), send_now() and release().
    """
    # aggregator
    cdef bint aggregates            # BufferingTLSTransport (else an unbuffered protocol)
    cdef object receive_general     # the protocol's Python dataReceived (any state)
    cdef object sink                # the unaggregated write (Twisted's write)
    cdef object clock               # IReactorTime for the next-turn flush
    cdef Py_ssize_t max_buffer
    cdef list buffered              # plaintext written, not yet encrypted
    cdef Py_ssize_t buffered_size
    cdef object scheduled           # the IDelayedCall of the flush, or None
    cdef bint delivering            # inside the application's dataReceived
    # the connection
    cdef TLSEngine engine           # None until bind()
    cdef object protocol
    cdef object error_type          # what the engine raises (OpenSSL.SSL.Error)
    cdef object receive_failed      # cold-path callbacks into the protocol
    cdef object send_failed
    cdef object deliver_general
    cdef bint generic_attributes    # the protocol's class reads attributes as object does

    def __init__(self, protocol, sink, clock, Py_ssize_t max_buffer, bint aggregates, receive_general):
        self.protocol = protocol
        self.generic_attributes = type(protocol).__getattribute__ is object.__getattribute__
        self.sink = sink
        self.clock = clock
        self.max_buffer = max_buffer
        self.aggregates = aggregates
        self.receive_general = receive_general
        self.buffered = []
        self.scheduled = None

    # -- Twisted's aggregator interface -------------------------------------

    def write(self, data):
        """
        The protocol's write.  Aggregating: buffer ``data`` (Twisted's
        _AggregateSmallWrites.write).  Not aggregating (an unbuffered
        TLSMemoryBIOProtocol): encrypt it now, one record per write, and
        send it now or, during a delivery, when the delivery returns.
        """
        if self.sink is None:
            return                  # released: the connection is gone (Twisted's null aggregator)
        if not self.aggregates:
            self._write_through(data)
            return
        if not PyBytes_CheckExact(data):
            data = data + b""       # as Twisted: copies a bytearray, refuses str
        self.buffered.append(data)
        self.buffered_size += len(data)
        if self.buffered_size > self.max_buffer:
            self.flush()
            return
        if self.delivering or self.scheduled is not None:
            return                  # flushed when the delivery returns / scheduled
        self.scheduled = self.clock.callLater(0, self.scheduled_flush)

    def scheduled_flush(self):
        """The next-turn flush."""
        self.scheduled = None
        self.flush()

    def flush(self):
        """Write everything buffered now, through the unaggregated write."""
        data = self._take_buffered()
        if data is not None:
            self.sink(data)

    def close(self):
        """The connection is lost: flush, and schedule nothing more."""
        if self.scheduled is not None:
            self.scheduled.cancel()
        self.scheduled_flush()

    cdef inline object _established(self, protocol):
        """The protocol's _established (read as the module comment's _attribute says)."""
        return _attribute(protocol, "_established", self.generic_attributes)

    cdef int _write_through(self, data) except -1:
        engine = self.engine
        if engine is None or not PyBytes_CheckExact(data) or self._established(self.protocol) is not engine:
            self.sink(data)     # the general write: close, producer and state checks
            return 0
        self._send_plaintext(engine, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), not self.delivering)
        return 0

    cdef object _take_buffered(self):
        """Everything buffered, joined (None if nothing), and the buffer emptied."""
        buffered = self.buffered
        if not buffered:
            return None
        data = buffered[0] if len(buffered) == 1 else _EMPTY.join(buffered)
        self.buffered = []
        self.buffered_size = 0
        return data

    # -- binding ------------------------------------------------------------

    def bind(self, TLSEngine engine, error_type, receive_failed, send_failed, deliver_general):
        """
        Drive the records of the protocol's connection with ``engine``.  With
        engine None, forget the engine and the socket (the connection is no
        longer driven by one): the loop then sends everything to the
        protocol's general methods.
        """
        if engine is None:
            error_type = receive_failed = send_failed = deliver_general = None
            self.release_socket()
            self.relay = None
        self.engine = engine
        self.error_type = error_type
        self.receive_failed = receive_failed
        self.send_failed = send_failed
        self.deliver_general = deliver_general

    def release(self):
        """
        The connection is gone: drop every reference (the protocol's
        methods, the engine, the socket, the relay), so that nothing keeps
        the protocol alive through the loop.  The loop does nothing after.
        """
        self.bind(None, None, None, None, None)
        self.protocol = self.sink = self.receive_general = self.clock = None
        self.buffered = []
        self.buffered_size = 0

    # -- the loop -----------------------------------------------------------

    cdef object _read_event(self):
        if self.fd < 0:
            return None
        result = self._recv()
        if type(result) is not int:
            return result
        self._ciphertext_in(_recv_buffer, <Py_ssize_t>result)
        return None

    def data_received(self, data):
        """
        The protocol's dataReceived (ciphertext from a transport that is not
        this loop's socket): established, in C; otherwise, or for data that
        is not bytes, the protocol's general path.
        """
        engine = self.engine
        if engine is not None and PyBytes_CheckExact(data) and self._established(self.protocol) is engine:
            self._established_in(engine, self.protocol, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        elif self.receive_general is not None:   # (None once released: nowhere to go)
            self.receive_general(self.protocol, data)

    def deliver(self, plaintext):
        """
        Give ``plaintext`` to the application, then encrypt and send what it
        wrote meanwhile and whatever else OpenSSL queued.  Returns True.
        """
        self._deliver(plaintext)
        return True

    def send_outgoing(self):
        """Send what OpenSSL queued (handshake flights, alerts, close_notify)."""
        if self.engine is None:
            raise RuntimeError("RecordLoop.send_outgoing() before bind()")
        self._send_outgoing()

    def send_now(self, data):
        """
        Encrypt and send ``data`` (bytes) on the established connection.
        Returns False, having done nothing, when the connection is not
        established or ``data`` is not bytes: then the protocol's general
        write must take it.
        """
        engine = self.engine
        if (engine is None or not PyBytes_CheckExact(data)
                or self._established(self.protocol) is not engine):
            return False
        self._send_plaintext(engine, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), True)
        return True

    cdef int _ciphertext_in(self, const char* data, Py_ssize_t length) except -1:
        engine = self.engine
        protocol = self.protocol
        if engine is None or self._established(protocol) is not engine:
            protocol.dataReceived(PyBytes_FromStringAndSize(data, length))
            return 0
        return self._established_in(engine, protocol, data, length)

    cdef int _established_in(self, TLSEngine engine, protocol, const char* data,
                             Py_ssize_t length) except -1:
        """_ciphertext_in once the connection is known to be established."""
        try:
            plaintext = engine._receive(data, length)
        except BaseException as error:
            if not isinstance(error, self.error_type):
                raise
            self.receive_failed(self.protocol)
            return 0
        if engine._deferred_error is not None or self._established(protocol) is not engine:
            self.deliver_general(self.protocol, plaintext)
        elif PyBytes_GET_SIZE(plaintext):
            self._deliver(plaintext)
        else:
            self._send_outgoing()
        return 0

    cdef int _deliver(self, plaintext) except -1:
        engine = self.engine
        protocol = self.protocol
        if self.relay is not None:
            self._relay(PyBytes_AS_STRING(plaintext), PyBytes_GET_SIZE(plaintext))
            if engine is not None and protocol._engine is engine:
                self._send_outgoing()
            return 0
        self.delivering = True
        try:
            _attribute(protocol, "wrappedProtocol", self.generic_attributes).dataReceived(plaintext)
        finally:
            self.delivering = False
        if self.buffered:
            if self.scheduled is not None:
                self.scheduled.cancel()
                self.scheduled = None
            data = self._take_buffered()
            if engine is not None and self._established(protocol) is engine and PyBytes_CheckExact(data):
                if not self._send_plaintext(engine, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), False):
                    return 0
            else:
                self.sink(data)     # the general write: close, producer and state checks
        if engine is not None and _attribute(protocol, "_engine", self.generic_attributes) is engine:
            # (not if the application lost the connection synchronously)
            self._send_outgoing()
        return 0

    cdef int _send_outgoing(self) except -1:
        """Send what the wbio holds: to the socket if nothing is queued before it."""
        cdef TLSEngine engine = self.engine
        _check_read(engine._busy, "outgoing()", True)
        cdef Py_ssize_t pending = _mem_pending(engine._wbio)
        if pending == 0:
            return 0
        if self.fd < 0 or not self._queue_empty():
            self._queue(engine._take_outgoing())
            return 0
        cdef Py_ssize_t chunk, sent
        while pending > 0:
            chunk = engine._drain(_send_buffer, pending if pending < IO_BUFFER else IO_BUFFER)
            sent = self._send_all(_send_buffer, chunk)
            if sent < chunk:
                rest = PyBytes_FromStringAndSize(_send_buffer + sent, chunk - sent)
                if _mem_pending(engine._wbio):
                    rest += engine._take_outgoing()
                self._queue(rest)
                return 0
            pending = _mem_pending(engine._wbio)
        return 0

    cdef bint _send_plaintext(self, TLSEngine engine, const char* data, Py_ssize_t length,
                              bint now) except -1:
        """
        Encrypt ``data`` into the wbio in rounds of at most WRITE_ROUND bytes
        (so the memory BIO stays small), sending after every round but the
        last, and after the last too when ``now`` (in a delivery, its end
        sends).  False, after telling the protocol, when OpenSSL failed.
        """
        cdef Py_ssize_t round_length
        while True:
            round_length = length if length < WRITE_ROUND else WRITE_ROUND
            try:
                engine._encrypt(data, round_length)
            except BaseException as error:
                if not isinstance(error, self.error_type):
                    raise
                self.send_failed(self.protocol)
                return False
            data += round_length
            length -= round_length
            if length == 0:
                break
            self._send_outgoing()
        if now:
            self._send_outgoing()
        return True

    cdef int _queue(self, bytes data) except -1:
        # (without a socket, the TLS protocol's transport: StringTransport, _BypassTLS)
        transport = (self.transport if self.fd >= 0
                     else _attribute(self.protocol, "transport", self.generic_attributes))
        transport.write(data)
        return 0

    cdef int take(self, const char* data, Py_ssize_t length) except -1:
        """Encrypt and send plaintext relayed from another connection."""
        engine = self.engine
        protocol = self.protocol
        if protocol is None:
            return 0    # the connection is gone: nowhere to go (as the relay's discard)
        if engine is None or self._established(protocol) is not engine or self.buffered:
            # The general write (as writeNow): aggregated bytes first, close
            # and producer checks.
            self.flush()
            self.sink(PyBytes_FromStringAndSize(data, length))
            return 0
        self._send_plaintext(engine, data, length, True)
        return 0


# ---------------------------------------------------------------------------
# The lean epoll reactor's dispatch (tlsfast._foreign.twistedepoll).

cdef object _BUILTIN_METHOD = type([].append)


def dispatch_events(list events, dict selectables, long read_event, one, read_ended, read_raised):
    """
    Dispatch what ``epoll.poll()`` returned: for each ``(fd, event)`` whose
    event is exactly ``read_event`` on a descriptor whose doRead is a
    SocketEnd's, run that read in C; send everything else to
    ``one(selectable, fd, event)`` (the reactor's own dispatch).  A compiled
    read that ends the connection goes to ``read_ended(selectable, why)``;
    one that raises, to ``read_raised(selectable)`` inside the except block.
    None of the three may raise (they log instead), except
    KeyboardInterrupt, which ends the loop.
    """
    for item in events:
        fd, event = item
        selectable = selectables.get(fd)
        if selectable is None:
            continue
        if event == read_event:
            method = getattr(selectable, "doRead", None)
            if type(method) is _BUILTIN_METHOD:
                owner = method.__self__
                if isinstance(owner, SocketEnd) and (<SocketEnd>owner).fd >= 0:
                    try:
                        why = (<SocketEnd>owner)._read_event()
                    except KeyboardInterrupt:
                        raise
                    except BaseException:
                        read_raised(selectable)
                        continue
                    if why:
                        read_ended(selectable, why)
                    continue
        one(selectable, fd, event)
