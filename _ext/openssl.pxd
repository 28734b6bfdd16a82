# C declarations of the OpenSSL surface the engine uses.
#
# The functions are NOT linked: the OpenSSL that pyOpenSSL drives lives inside
# cryptography's extension module and exports no symbols.  We call it through a
# table of function pointers that tlsfast/_binding.py fills once at import from
# cryptography's cffi library (ffi.addressof(lib, name)).  Each pointer type here
# must match the cffi signature listed in tlsfast/_binding.py:EXPECTED_SIGNATURES;
# the binding refuses to fill the table when one differs.

cdef extern from *:
    """
    struct ssl_st;
    struct bio_st;
    typedef struct ssl_st tlsfast_SSL;
    typedef struct bio_st tlsfast_BIO;
    """
    ctypedef struct SSL "tlsfast_SSL"
    ctypedef struct BIO "tlsfast_BIO"

# Stable ABI constants (ssl.h); _binding.py checks them against the library.
cdef enum:
    SSL_ERROR_NONE = 0
    SSL_ERROR_SSL = 1
    SSL_ERROR_WANT_READ = 2
    SSL_ERROR_WANT_WRITE = 3
    SSL_ERROR_SYSCALL = 5
    SSL_ERROR_ZERO_RETURN = 6
    SSL_SENT_SHUTDOWN = 1
    SSL_RECEIVED_SHUTDOWN = 2

ctypedef struct OpenSSLFunctions:
    int (*SSL_read)(SSL *, void *, int) noexcept nogil
    int (*SSL_write)(SSL *, const void *, int) noexcept nogil
    int (*SSL_do_handshake)(SSL *) noexcept nogil
    int (*SSL_get_error)(const SSL *, int) noexcept nogil
    int (*SSL_shutdown)(SSL *) noexcept nogil
    int (*SSL_pending)(const SSL *) noexcept nogil
    int (*SSL_get_shutdown)(const SSL *) noexcept nogil
    # cryptography's binding has no SSL_is_init_finished/SSL_in_init/SSL_get_state:
    # the state's name is the one exposed view of SSL_get_state() (see
    # HANDSHAKE_FINISHED_STATE in _engine.pyx).
    const char *(*SSL_state_string_long)(const SSL *) noexcept nogil
    int (*BIO_read)(BIO *, void *, int) noexcept nogil
    int (*BIO_write)(BIO *, const void *, int) noexcept nogil
    long (*BIO_get_mem_data)(BIO *, char **) noexcept nogil
    long (*BIO_set_mem_eof_return)(BIO *, int) noexcept nogil
    void (*ERR_clear_error)() noexcept nogil
    unsigned long (*ERR_peek_error)() noexcept nogil
