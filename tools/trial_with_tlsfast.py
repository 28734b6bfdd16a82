"""
Run Twisted's trial with tlsfast installed into Twisted.

    python tools/trial_with_tlsfast.py [trial arguments...]

Exactly ``python -m twisted.trial``, except that ``tlsfast.twisted.install()``
runs first; it refuses (exit status 3) if the engine cannot load, so a run
that claims to test tlsfast never silently tests stock Twisted.
"""

import sys
import warnings


def main():
    import tlsfast.twisted

    with warnings.catch_warnings():
        warnings.simplefilter("error", tlsfast.twisted.TLSFastUnavailableWarning)
        try:
            tlsfast.twisted.install()
        except tlsfast.twisted.TLSFastUnavailableWarning as exc:
            print(f"tlsfast not installed: {exc}", file=sys.stderr)
            sys.exit(3)
    from twisted.scripts.trial import run

    sys.argv = ["trial"] + sys.argv[1:]
    run()


if __name__ == "__main__":
    main()
