"""
SSLKEYLOGFILE: the key log holds, for each connection, the NSS-format lines
Wireshark needs, keyed by that connection's client random.
"""

from __future__ import annotations

import logging

import pytest

from tests.options.helpers import connect
from tlsfast.options import ClientOptions, ConfigurationError

pytestmark = pytest.mark.usefixtures("engineRequired")

TLS13_LABELS = {
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EXPORTER_SECRET",
}


def keyLog(path):
    """{client random hex: {label: secret hex}} from an NSS key-log file."""
    entries = {}
    for line in path.read_text().splitlines():
        label, random, secret = line.split(" ")
        assert len(random) == 64 and int(secret, 16) >= 0
        entries.setdefault(random, {})[label] = secret
    return entries


@pytest.mark.parametrize("side", ["client", "server"])
def test_tls13(client, server, tmp_path, side):
    path = tmp_path / "keys.log"
    options = {"keyLogFile": str(path)}
    pairs = [connect(client(**options if side == "client" else {}),
                     server(**options if side == "server" else {})) for _ in range(2)]
    entries = keyLog(path)
    randoms = [p.client.connection.client_random().hex() for p in pairs]
    assert sorted(entries) == sorted(randoms)
    for random in randoms:
        assert set(entries[random]) == TLS13_LABELS


def test_tls12(client, server, tmp_path):
    path = tmp_path / "keys.log"
    pair = connect(client(keyLogFile=str(path), maximumVersion="1.2"), server())
    entries = keyLog(path)
    random = pair.client.connection.client_random().hex()
    assert entries == {random: {"CLIENT_RANDOM": pair.client.connection.master_key().hex()}}


def test_environment(client, server, tmp_path, monkeypatch, caplog):
    """SSLKEYLOGFILE is honoured, with a logged warning naming the file."""
    path = tmp_path / "env.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    with caplog.at_level(logging.WARNING, logger="tlsfast.options"):
        options = client()
    assert any(str(path) in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    pair = connect(options, server())
    assert pair.client.connection.client_random().hex() in keyLog(path)


def test_environmentRefused(client, server, tmp_path, monkeypatch):
    """keyLogFile=False ignores SSLKEYLOGFILE."""
    path = tmp_path / "env.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    connect(client(keyLogFile=False), server(keyLogFile=False))
    assert not path.exists()


def test_notSetMeansNoLog(client, server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    connect(client(), server())
    assert list(tmp_path.iterdir()) == []


def test_unwritable(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot open key-log file"):
        ClientOptions("example.com", keyLogFile=str(tmp_path / "no" / "such" / "dir.log"))
