"""
Run Twisted's trial with tlsfast installed into Twisted.

    python tools/trial_with_tlsfast.py [trial arguments...]

Exactly ``python -m twisted.trial``, except that ``tlsfast.twisted.install()``
runs first.  It refuses (exit status 3) if the engine cannot load, so a run
that claims to test tlsfast never silently tests stock Twisted, and at exit
it prints to stderr how many TLS connections ran on the engine and how many
on Twisted's own record path (a connection whose ``OpenSSL.SSL.Connection``
a test replaced with a fake object)::

    tlsfast-trial: engine=123 stock-path=4
"""

import atexit
import sys
import warnings


def main():
    import tlsfast.twisted
    from tlsfast._foreign import twistedtls as _protocol  # where the glue looks engineFor up

    with warnings.catch_warnings():
        warnings.simplefilter("error", tlsfast.twisted.TLSFastUnavailableWarning)
        try:
            tlsfast.twisted.install()
        except tlsfast.twisted.TLSFastUnavailableWarning as exc:
            print(f"tlsfast not installed: {exc}", file=sys.stderr)
            sys.exit(3)

    counts = {"engine": 0, "stock-path": 0}
    engineFor = _protocol.engineFor

    def countingEngineFor(connection):
        engine = engineFor(connection)
        counts["engine" if engine is not None else "stock-path"] += 1
        return engine

    _protocol.engineFor = countingEngineFor

    @atexit.register
    def report():
        print(
            f"tlsfast-trial: engine={counts['engine']} stock-path={counts['stock-path']}",
            file=sys.stderr,
        )

    from twisted.scripts.trial import run

    sys.argv = ["trial"] + sys.argv[1:]
    run()


if __name__ == "__main__":
    main()
