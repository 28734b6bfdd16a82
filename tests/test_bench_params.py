"""
``tlsfast bench`` TLS parameters: --tls-version, --cipher, --group,
--key-type, --mtls.  The name mapping and the negotiated-parameter check are
pure functions, tested directly; two short runs check that every stack
negotiates what was asked; a group the system OpenSSL lacks makes its stacks
unavailable, cleanly.
"""

from __future__ import annotations

import json
import ssl

import pytest

from tests.test_bench_cli import one_line_error, tlsfast_bench
from tlsfast.bench import report, runner
from tlsfast.bench.runner import Result, Run, Sample, Settings
from tlsfast.bench.tlsconfig import ConfigError, TLSParams, mismatches, resolve, stdlib_knows_group

QUICK = ["--reps", "1", "--seconds", "0.1", "--megabytes", "1", "--engine-sizes", "1024",
         "--engine-rounds", "1", "--engine-seconds", "5", "--quiet"]

# ---------------------------------------------------------------------------
# names


@pytest.mark.parametrize("version, cipher, key_type, suite", [
    ("1.3", "AES-128-GCM", "ecdsa-p256", "TLS_AES_128_GCM_SHA256"),
    ("1.3", "aes-256-gcm", "rsa-2048", "TLS_AES_256_GCM_SHA384"),
    ("1.3", "ChaCha20-Poly1305", "ed25519", "TLS_CHACHA20_POLY1305_SHA256"),
    ("1.2", "AES-128-GCM", "ecdsa-p256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("1.2", "AES-256-GCM", "rsa-4096", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("1.2", "chacha20-poly1305", "ed25519", "ECDHE-ECDSA-CHACHA20-POLY1305"),
    ("1.2", "ChaCha20-Poly1305", "rsa-2048", "ECDHE-RSA-CHACHA20-POLY1305"),
    # OpenSSL's names keep working where they fit
    ("1.3", "TLS_CHACHA20_POLY1305_SHA256", "ecdsa-p256", "TLS_CHACHA20_POLY1305_SHA256"),
    ("1.2", "ECDHE-RSA-AES128-GCM-SHA256", "rsa-2048", "ECDHE-RSA-AES128-GCM-SHA256"),
])
def test_cipher_names_map_to_the_suite_for_version_and_key(version, cipher, key_type, suite):
    assert resolve(version, cipher, "x25519", key_type).cipher == suite


@pytest.mark.parametrize("version, cipher, key_type, message", [
    ("1.2", "TLS_AES_128_GCM_SHA256", "ecdsa-p256", "is a TLS 1.3 suite"),
    ("1.3", "ECDHE-ECDSA-AES128-GCM-SHA256", "ecdsa-p256", "is a TLS 1.2 suite"),
    ("1.2", "ECDHE-RSA-AES128-GCM-SHA256", "ecdsa-p256", "does not fit TLS 1.2 with an ecdsa-p256 key"),
    ("1.3", "RC4-MD5", "ecdsa-p256", "unknown TLS 1.3 cipher suite 'RC4-MD5'"),
    ("1.1", "AES-128-GCM", "ecdsa-p256", "unknown TLS version '1.1'"),
    ("1.3", "AES-128-GCM", "dsa-1024", "unknown key type 'dsa-1024'"),
])
def test_cipher_that_does_not_fit_is_refused(version, cipher, key_type, message):
    with pytest.raises(ConfigError, match=message):
        resolve(version, cipher, "x25519", key_type)


def test_group_names():
    assert resolve(group="x25519").group == "X25519"
    assert resolve(group="SECP256R1").group == "P-256"
    assert resolve(group="x25519mlkem768").group == "X25519MLKEM768"
    assert resolve(group="P-384").group == "P-384"  # any OpenSSL name passes; pin_context checks it
    with pytest.raises(ConfigError, match="needs TLS 1.3"):
        resolve("1.2", group="X25519MLKEM768")
    with pytest.raises(ConfigError, match="bad key-exchange group name"):
        resolve(group="X25519:P-256")


# ---------------------------------------------------------------------------
# the negotiated-parameter check

def test_mismatches():
    params = TLSParams("1.3", "TLS_AES_128_GCM_SHA256", "P-256", "ecdsa-p256", mtls=True)
    same = {"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "group": "secp256r1", "mtls": True}
    assert mismatches(params, same) == []
    assert mismatches(params, dict(same, group="prime256v1 (server)")) == []
    assert mismatches(params, dict(same, group="? (stdlib ssl cannot tell)")) == []  # unknown is not wrong
    assert mismatches(params, dict(same, version="TLSv1.2")) == ["version TLSv1.2, not TLSv1.3"]
    assert mismatches(params, dict(same, cipher="TLS_AES_256_GCM_SHA384")) == [
        "cipher TLS_AES_256_GCM_SHA384, not TLS_AES_128_GCM_SHA256"]
    assert mismatches(params, dict(same, group="x25519")) == ["group x25519, not P-256"]
    assert mismatches(params, dict(same, mtls=False)) == ["a client certificate was not presented"]


def test_a_stack_that_negotiated_something_else_is_flagged_in_the_table():
    result = Result("echo", "echo", "echo", "message", "server process")
    for stack in ("twisted", "tlsfast"):
        result.samples.append(Sample(stack, ops=100, seconds=1.0, cpu_seconds=0.1))
    asked = {"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "group": "x25519"}
    result.negotiated = {"twisted": asked, "tlsfast": dict(asked, cipher="TLS_AES_256_GCM_SHA384")}
    header, body = report.rows(result)
    assert "flags" not in header  # before the check: the usual columns
    result.check_negotiated(TLSParams())
    assert result.flags == {"tlsfast": ["negotiated cipher TLS_AES_256_GCM_SHA384, not TLS_AES_128_GCM_SHA256"]}
    header, body = report.rows(result)
    assert header[-1] == "flags"
    assert [row[-1] for row in body] == ["", "negotiated"]
    assert "flagged tlsfast: negotiated cipher TLS_AES_256_GCM_SHA384" in report.markdown([result])


# ---------------------------------------------------------------------------
# a group the system OpenSSL lacks

def test_stdlib_knows_group():
    assert stdlib_knows_group("X25519")
    assert stdlib_knows_group("P-256")
    assert not stdlib_knows_group("NoSuchGroup")


def test_stdlib_stacks_and_loopback_are_unavailable_without_the_group(monkeypatch):
    monkeypatch.setattr(runner, "stdlib_knows_group", lambda group: False)
    settings = Settings(scenarios=["echo", "engine"], stacks=["twisted", "tlsfast", "asyncio", "c"],
                        group="X25519MLKEM768")
    run = Run(settings)
    assert sorted(run.unavailable) == ["asyncio", "load generator"]
    assert "X25519MLKEM768" in run.unavailable["asyncio"]
    assert run.stacks_for("echo") == []
    assert run.stacks_for("engine") == ["twisted", "tlsfast", "c"]
    monkeypatch.setattr(runner, "stdlib_knows_group", lambda group: True)
    assert Run(settings).unavailable == {}


@pytest.mark.skipif(stdlib_knows_group("X25519MLKEM768"), reason=f"{ssl.OPENSSL_VERSION} implements ML-KEM")
def test_mlkem_runs_where_it_can(tmp_path):
    out = tmp_path / "out.json"
    done = tlsfast_bench("echo", "engine", "--group", "X25519MLKEM768", "--stacks", "twisted,tlsfast,asyncio,c",
                         *QUICK, "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "unavailable with these parameters: asyncio: stdlib ssl's" in done.stdout
    document = json.loads(out.read_text())
    assert sorted(document["unavailable"]) == ["asyncio", "load generator"]
    [engine] = document["results"]
    assert engine["key"] == "engine-1024"
    assert sorted(engine["negotiated"]) == ["c", "tlsfast", "twisted"]
    for negotiated in engine["negotiated"].values():
        assert negotiated["group"] == "X25519MLKEM768"
    assert not [why for whys in engine["flags"].values() for why in whys if why.startswith("negotiated")]
    # only loopback scenarios: nothing can run
    one_line_error(tlsfast_bench("echo", "--group", "X25519MLKEM768", *QUICK), 3, "nothing can run with")


# ---------------------------------------------------------------------------
# whole runs: what every stack negotiated

def _negotiated(path) -> dict:
    document = json.loads(path.read_text())
    return document, {result["key"]: result for result in document["results"]}


def test_tls12_chacha_rsa_mtls_p256(tmp_path):
    out = tmp_path / "out.json"
    done = tlsfast_bench("echo", "engine", "--stacks", "tcp,twisted,tlsfast,asyncio,c", "--tls-version", "1.2",
                         "--cipher", "ChaCha20-Poly1305", "--key-type", "rsa-2048", "--group", "secp256r1",
                         "--mtls", *QUICK, "--json", str(out))
    assert done.returncode == 0, done.stderr
    document, results = _negotiated(out)
    assert document["tls"] == {"version": "1.2", "cipher": "ECDHE-RSA-CHACHA20-POLY1305", "group": "P-256",
                               "key_type": "rsa-2048", "mtls": True}
    assert sorted(results) == ["echo", "engine-1024"]
    for key, stacks in (("echo", ["asyncio", "tlsfast", "twisted"]), ("engine-1024", ["asyncio", "c", "tlsfast",
                                                                                          "twisted"])):
        assert sorted(results[key]["negotiated"]) == stacks, key
        for stack, negotiated in results[key]["negotiated"].items():
            assert negotiated["version"] == "TLSv1.2", (key, stack)
            assert negotiated["cipher"] == "ECDHE-RSA-CHACHA20-POLY1305", (key, stack)
            assert negotiated["mtls"] is True, (key, stack)
            if stack != "asyncio":
                assert negotiated["group"].split()[0] in ("secp256r1", "prime256v1", "P-256"), (key, stack)
        # no stack negotiated something else (a loaded machine may still flag noise)
        assert not [why for whys in results[key]["flags"].values() for why in whys
                    if why.startswith("negotiated")], key
    assert "tcp" in results["echo"]["summary"]


def test_tls13_aes256_ed25519(tmp_path):
    out = tmp_path / "out.json"
    done = tlsfast_bench("handshake", "--no-resume", "--stacks", "twisted,asyncio", "--cipher", "AES-256-GCM",
                         "--key-type", "ed25519", *QUICK, "--json", str(out))
    assert done.returncode == 0, done.stderr
    _, results = _negotiated(out)
    for stack, negotiated in results["handshake"]["negotiated"].items():
        assert (negotiated["version"], negotiated["cipher"]) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384"), stack
        assert negotiated["mtls"] is False, stack
    assert "TLS 1.3 TLS_AES_256_GCM_SHA384 / X25519 / ed25519" in " ".join(done.stdout.split())  # rich wraps


# ---------------------------------------------------------------------------
# bad values: one line, exit 2

@pytest.mark.parametrize("arguments, text", [
    (["--tls-version", "1.1"], "argument --tls-version: invalid choice: '1.1'"),
    (["--key-type", "dsa"], "argument --key-type: invalid choice: 'dsa'"),
    (["--cipher", "AES-128-CBC"], "unknown TLS 1.3 cipher suite 'AES-128-CBC'"),
    (["--tls-version", "1.2", "--cipher", "TLS_AES_128_GCM_SHA256"], "is a TLS 1.3 suite"),
    (["--tls-version", "1.2", "--group", "X25519MLKEM768"], "group X25519MLKEM768 needs TLS 1.3"),
])
def test_bad_tls_parameters(arguments, text):
    done = tlsfast_bench("echo", *arguments)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert text in line and line.startswith("tlsfast bench")
