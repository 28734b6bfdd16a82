"""close_timeout (--close-timeout): the deadline of a graceful close, checked like the other timeouts."""

from tests.proxy.helpers import runProxy


def test_close_timeout_must_be_positive(pems):
    completed = runProxy(["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                          "--cert", pems.cert, "--key", pems.key, "--close-timeout", "0"])
    assert completed.returncode == 2, completed.stderr
    assert "close-timeout must be positive" in completed.stderr


def test_close_timeout_in_toml(pems, tmp_path):
    config = tmp_path / "proxy.toml"
    config.write_text(f"""
[[listener]]
listen = "127.0.0.1:0"
backend = "127.0.0.1:9"
cert = "{pems.cert}"
key = "{pems.key}"
close_timeout = -1
""")
    completed = runProxy(["--config", config])
    assert completed.returncode == 2, completed.stderr
    assert "listener l0" in completed.stderr and "close-timeout must be positive" in completed.stderr
