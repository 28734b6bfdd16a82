"""
Helpers for tests that talk to real non-Twisted peers (openssl, curl, the
examples in docs/examples) from inside a running reactor: PEM files of the
tests/pki.py identities, and subprocesses that are always bounded in time and
always killed.

Subprocesses are driven with the stdlib (in the reactor's thread pool for
blocking waits) rather than reactor.spawnProcess: reaping does not then depend
on trial having installed a SIGCHLD handler.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from twisted.internet import defer, task, threads

from tests import pki

# Upper bound for any one subprocess; only reached when something hangs.
TIMEOUT = 30.0


@dataclass(frozen=True)
class PEMFiles:
    """Paths of PEM files written for one test."""

    directory: str
    ca: str
    cert: str
    key: str
    clientCert: str
    clientKey: str


def writePEMs(testCase) -> PEMFiles:
    """
    Write the test CA, the example.com server identity and a client identity
    (the same ones tlshelpers uses in this process) to a temporary directory
    removed at the test's cleanup.
    """
    directory = tempfile.mkdtemp(prefix="tlsfast-test-")
    testCase.addCleanup(shutil.rmtree, directory, True)
    server = pki.leaf("ecdsa", names=("example.com",))
    client = pki.leaf("ecdsa", names=("client.example.com",), client=True)
    files = {
        "ca": pki.certificate_authority().cert_pem,
        "cert": server.cert_pem,
        "key": server.key_pem,
        "clientCert": client.cert_pem,
        "clientKey": client.key_pem,
    }
    paths = pki.write_pems(directory, files)
    return PEMFiles(directory=directory, **paths)


def run(argv, input=b"", timeout=TIMEOUT, env=None) -> defer.Deferred:
    """
    Run C{argv} to completion in a thread; fires with a
    L{subprocess.CompletedProcess} (stdout and stderr as text).  The child is
    killed (and the Deferred fails with L{subprocess.TimeoutExpired}) after
    C{timeout} seconds.
    """
    return threads.deferToThread(
        subprocess.run, argv, input=input, capture_output=True, timeout=timeout, env=env
    ).addCallback(_decoded)


def _decoded(completed):
    completed.stdout = completed.stdout.decode("utf-8", "replace")
    completed.stderr = completed.stderr.decode("utf-8", "replace")
    return completed


class Background:
    """
    A long-running child (a server) whose stdout and stderr go to one file.
    C{addCleanup} (a trial TestCase's C{addCleanup}, or pytest's
    C{request.addfinalizer}) registers the kill, so it dies whatever happens.
    """

    def __init__(self, addCleanup, argv, env=None):
        fd, self.outputPath = tempfile.mkstemp(prefix="tlsfast-child-")
        os.close(fd)
        addCleanup(lambda: os.unlink(self.outputPath))
        # The child gets its own O_APPEND file description: sharing ours would
        # share the file offset, and our reads (seek, read) would race its
        # writes and overwrite output.
        with open(self.outputPath, "ab") as sink:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, env=env,
            )
        addCleanup(self.kill)

    def output(self) -> str:
        with open(self.outputPath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _search(self, pattern, deadline):
        """The match of C{pattern} in the output so far, or None; raises if
        the child exited without printing it or the deadline passed."""
        match = re.search(pattern, self.output())
        if match:
            return match
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.process.args[:2]} exited ({self.process.returncode}) before "
                f"printing {pattern!r}:\n{self.output()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} in time:\n{self.output()}")
        return None

    async def waitForOutput(self, pattern, timeout=TIMEOUT):
        """
        Poll the output (without blocking the reactor) until C{pattern}, a
        regular expression, matches; return the match.  Fails if the child
        exits first or C{timeout} seconds pass.
        """
        from twisted.internet import reactor

        deadline = time.monotonic() + timeout
        while (match := self._search(pattern, deadline)) is None:
            await task.deferLater(reactor, 0.05, lambda: None)
        return match

    def waitForOutputBlocking(self, pattern, timeout=TIMEOUT):
        """L{waitForOutput} for callers without a reactor."""
        deadline = time.monotonic() + timeout
        while (match := self._search(pattern, deadline)) is None:
            time.sleep(0.05)
        return match

    def wait(self, timeout=TIMEOUT) -> defer.Deferred:
        """Fires with the exit code; kills the child after C{timeout} s."""
        return threads.deferToThread(self.waitBlocking, timeout)

    def waitBlocking(self, timeout=TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
