"""The key log is created readable by its owner only: its secrets decrypt every logged connection."""

from __future__ import annotations

import os
import stat

import pytest

from tests.options.helpers import connect

pytestmark = pytest.mark.usefixtures("engineRequired")


@pytest.fixture
def permissiveUmask():
    previous = os.umask(0o022)  # the usual default: files 0644
    yield
    os.umask(previous)


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_created_0600(client, server, tmp_path, monkeypatch, permissiveUmask, via):
    path = tmp_path / "keys.log"
    if via == "environment":
        monkeypatch.setenv("SSLKEYLOGFILE", str(path))
        options = server()
    else:
        options = server(keyLogFile=str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    connect(client(), options)
    assert path.read_text().count("\n") >= 5  # TLS 1.3: five secrets


def test_recreated_0600_by_the_writer(client, server, tmp_path, permissiveUmask):
    """Removed while in use (log rotation): written again, still 0600."""
    path = tmp_path / "keys.log"
    options = server(keyLogFile=str(path))
    path.unlink()
    connect(client(), options)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text()


def test_an_existing_file_keeps_its_mode(client, server, tmp_path):
    path = tmp_path / "keys.log"
    path.write_bytes(b"")
    path.chmod(0o640)
    connect(client(), server(keyLogFile=str(path)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text()
