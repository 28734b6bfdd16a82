"""
Building options: every accepted form of certificate and key, and every
bad configuration failing at construction with a message that says what
is wrong.
"""

from __future__ import annotations

import datetime
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL
from twisted.internet.ssl import PrivateCertificate

from tests import pki
from tests.options.helpers import writePEMs
from tlsfast.options import (
    CertificateValidityWarning,
    ClientOptions,
    ConfigurationError,
    ServerOptions,
)

LEAF = pki.leaf("ecdsa", names=("example.com",))
OTHER = pki.leaf("rsa", names=("other.example.com",))


class TestAcceptedForms:
    def test_paths(self, tmp_path):
        cert, key, ca = writePEMs(tmp_path)
        options = ServerOptions(cert, key)
        assert options.identity.certificate == LEAF.certificate

    def test_combinedPEMFile(self, tmp_path):
        path = tmp_path / "server.pem"
        path.write_bytes(LEAF.cert_pem + LEAF.key_pem)
        assert ServerOptions(str(path)).identity.key.private_numbers() == LEAF.key.private_numbers()

    def test_bytes(self):
        assert ServerOptions(LEAF.cert_pem, LEAF.key_pem).identity.certificate == LEAF.certificate

    def test_DER(self):
        der = LEAF.certificate.public_bytes(serialization.Encoding.DER)
        keyDER = LEAF.key.private_bytes(serialization.Encoding.DER,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        assert ServerOptions(der, keyDER).identity.certificate == LEAF.certificate

    def test_objects(self):
        assert ServerOptions(LEAF.certificate, LEAF.key).identity.certificate == LEAF.certificate

    def test_twistedPrivateCertificate(self):
        private = PrivateCertificate.loadPEM(LEAF.cert_pem + LEAF.key_pem)
        assert ServerOptions(private).identity.certificate == LEAF.certificate

    def test_chain(self):
        """A list (leaf first) or chain= gives the certificates sent after the leaf."""
        ca = pki.certificate_authority().certificate
        assert ServerOptions([LEAF.certificate, ca], LEAF.key).identity.chain == (ca,)
        assert ServerOptions(LEAF.cert_pem + pki.certificate_authority().cert_pem,
                             LEAF.key_pem).identity.chain == (ca,)
        assert ServerOptions(LEAF.certificate, LEAF.key, chain=[ca]).identity.chain == (ca,)

    def test_encryptedKey(self):
        encrypted = LEAF.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"))
        ServerOptions(LEAF.cert_pem, encrypted, password=b"secret")
        with pytest.raises(ConfigurationError, match="Password was not given but private key is encrypted"):
            ServerOptions(LEAF.cert_pem, encrypted)

    @pytest.mark.parametrize("value", ["1.2", "TLSv1.2", "tls1_2", SSL.TLS1_2_VERSION])
    def test_versionSpellings(self, value):
        import ssl

        assert ServerOptions(LEAF.certificate, LEAF.key, minimumVersion=value).policy.minimumVersion == SSL.TLS1_2_VERSION
        assert ServerOptions(LEAF.certificate, LEAF.key,
                             maximumVersion=ssl.TLSVersion.TLSv1_3).policy.maximumVersion == SSL.TLS1_3_VERSION

    def test_caFileAndDirectory(self, tmp_path):
        cert, key, ca = writePEMs(tmp_path)
        ServerOptions(cert, key, clientCertificate="required", caFile=ca)
        ServerOptions(cert, key, clientCertificate="optional", caPath=str(tmp_path))
        assert ClientOptions("example.com", caFile=ca).trustSource == "given"


class TestErrors:
    def test_keyDoesNotMatch(self):
        with pytest.raises(ConfigurationError, match=r"private key does not match server certificate \(CN=example.com\)"):
            ServerOptions(LEAF.certificate, OTHER.key)

    def test_clientKeyDoesNotMatch(self):
        with pytest.raises(ConfigurationError, match="private key does not match client certificate"):
            ClientOptions("example.com", clientCertificate=LEAF.certificate, clientKey=OTHER.key)

    def test_unreadableFile(self, tmp_path):
        missing = tmp_path / "missing.pem"
        with pytest.raises(ConfigurationError, match=r"cannot read server certificate file .*missing\.pem.*No such file"):
            ServerOptions(str(missing), LEAF.key)

    def test_unreadableKeyFile(self, tmp_path):
        with pytest.raises(ConfigurationError, match=r"cannot read private key for server certificate file"):
            ServerOptions(LEAF.cert_pem, str(tmp_path / "nokey.pem"))

    def test_malformedCertificate(self, tmp_path):
        path = tmp_path / "bad.pem"
        path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n")
        with pytest.raises(ConfigurationError, match=r"bad\.pem.* malformed certificate"):
            ServerOptions(str(path), LEAF.key)

    def test_notACertificate(self, tmp_path):
        path = tmp_path / "text.pem"
        path.write_bytes(b"hello")
        with pytest.raises(ConfigurationError, match=r"text\.pem.* neither PEM nor a DER certificate"):
            ServerOptions(str(path), LEAF.key)

    def test_keyFileHasNoKey(self):
        with pytest.raises(ConfigurationError, match="contains no PEM private key"):
            ServerOptions(LEAF.cert_pem, LEAF.cert_pem)

    def test_certificateObjectWithoutKey(self):
        with pytest.raises(ConfigurationError, match="a private key is needed"):
            ServerOptions(LEAF.certificate)

    def test_combinedFileWithoutKey(self):
        with pytest.raises(ConfigurationError, match="contains no PEM private key"):
            ServerOptions(LEAF.cert_pem)

    @pytest.mark.parametrize("value", ["1.1", "TLSv1.0", "1.4", "SSLv3", 5])
    def test_unknownVersion(self, value):
        with pytest.raises(ConfigurationError, match=r"unknown TLS version .* for minimumVersion: use one of '1.2', '1.3'"):
            ServerOptions(LEAF.certificate, LEAF.key, minimumVersion=value)

    def test_minimumAboveMaximum(self):
        with pytest.raises(ConfigurationError, match="minimumVersion '1.3' is above maximumVersion '1.2'"):
            ClientOptions("example.com", minimumVersion="1.3", maximumVersion="1.2")

    def test_alpnNotBytes(self):
        with pytest.raises(ConfigurationError, match=r"ALPN protocols must be bytes: 'h2' is str \(write b'h2'\)"):
            ServerOptions(LEAF.certificate, LEAF.key, acceptableProtocols=["h2"])
        with pytest.raises(ConfigurationError, match="ALPN protocols must be a list of bytes"):
            ClientOptions("example.com", acceptableProtocols=b"h2")
        with pytest.raises(ConfigurationError, match="must be 1 to 255 bytes"):
            ClientOptions("example.com", acceptableProtocols=[b""])

    def test_cipherStringSelectsNothing(self):
        with pytest.raises(ConfigurationError, match="cipher string 'NO-SUCH-CIPHER' selects no cipher"):
            ServerOptions(LEAF.certificate, LEAF.key, ciphers="NO-SUCH-CIPHER")

    @pytest.mark.parametrize("ciphers", [
        "ECDHE-RSA-AES128-GCM-SHA256",  # an RSA cipher for an ECDSA key
        "aNULL",                        # below the security level
        "eNULL",
    ])
    def test_cipherStringLeavesNothingUsable(self, ciphers):
        """Syntactically fine, but no handshake is possible: caught by a probe."""
        with pytest.raises(ConfigurationError, match=r"no TLS handshake is possible .*'no shared cipher'"):
            ServerOptions(LEAF.certificate, LEAF.key, ciphers=ciphers, maximumVersion="1.2")
        # With TLS 1.3 allowed the same string is fine: 1.3 suites remain.
        ServerOptions(LEAF.certificate, LEAF.key, ciphers=ciphers)

    def test_rsaCipherForRSAKey(self):
        rsa = pki.leaf("rsa", names=("example.com",))
        ServerOptions(rsa.certificate, rsa.key, ciphers="ECDHE-RSA-AES128-GCM-SHA256", maximumVersion="1.2")

    def test_tls13SuitesSelectNothing(self):
        with pytest.raises(ConfigurationError, match="TLS 1.3 suites 'TLS_NOPE' select nothing"):
            ClientOptions("example.com", tls13Ciphers="TLS_NOPE")
        with pytest.raises(ConfigurationError, match="tls13Ciphers is empty and TLS 1.2 is not allowed"):
            ClientOptions("example.com", tls13Ciphers="", minimumVersion="1.3")

    def test_unknownGroup(self):
        with pytest.raises(ConfigurationError, match="key-exchange groups 'X25519:NOPE'"):
            ServerOptions(LEAF.certificate, LEAF.key, groups="X25519:NOPE")

    def test_clientCertificateMode(self):
        with pytest.raises(ConfigurationError, match="clientCertificate must be one of"):
            ServerOptions(LEAF.certificate, LEAF.key, clientCertificate="yes")
        with pytest.raises(ConfigurationError, match="needs caFile, caPath or caCertificates"):
            ServerOptions(LEAF.certificate, LEAF.key, clientCertificate="required")

    def test_missingCAFile(self, tmp_path):
        with pytest.raises(ConfigurationError, match=r"CA file .*nothere\.pem.* does not exist"):
            ClientOptions("example.com", caFile=str(tmp_path / "nothere.pem"))
        with pytest.raises(ConfigurationError, match=r"CA directory .* does not exist"):
            ClientOptions("example.com", caPath=str(tmp_path / "nodir"))

    def test_badTrustRoot(self):
        with pytest.raises(ConfigurationError, match="trustRoot must be 'platform'"):
            ClientOptions("example.com", trustRoot="system")

    def test_badDHParameters(self, tmp_path):
        path = tmp_path / "dh.pem"
        path.write_bytes(b"garbage")
        with pytest.raises(ConfigurationError, match=r"DH parameters file .*dh\.pem.* is malformed"):
            ServerOptions(LEAF.certificate, LEAF.key, dhParameters=str(path))

    def test_badWildcard(self):
        with pytest.raises(ConfigurationError, match="only a leading"):
            ServerOptions(LEAF.certificate, LEAF.key, serverNames={"a.*.test": LEAF.cert_pem + LEAF.key_pem})

    def test_sniKeyMismatch(self):
        with pytest.raises(ConfigurationError, match="private key does not match certificate for 'x.test'"):
            ServerOptions(LEAF.certificate, LEAF.key, serverNames={"x.test": (LEAF.certificate, OTHER.key)})

    @pytest.mark.parametrize("value", [0, -1, "10", True])
    def test_badTimeout(self, value):
        with pytest.raises(ConfigurationError, match="handshakeTimeout must be a positive number of seconds"):
            ServerOptions(LEAF.certificate, LEAF.key, handshakeTimeout=value)
        with pytest.raises(ConfigurationError, match="closeTimeout must be a positive number of seconds"):
            ClientOptions("example.com", closeTimeout=value)

    def test_emptyHostname(self):
        with pytest.raises(ConfigurationError, match="hostname must be a non-empty string"):
            ClientOptions("")

    def test_isValueError(self):
        assert issubclass(ConfigurationError, ValueError)


def _certificate(notBefore, notAfter):
    ca = pki.certificate_authority()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "dated.test")]))
        .issuer_name(ca.certificate.subject)
        .public_key(LEAF.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(notBefore)
        .not_valid_after(notAfter)
        .sign(ca.key, hashes.SHA256())
    )


class TestValidityWarnings:
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)

    def test_expired(self):
        expired = _certificate(self.now - 10 * self.day, self.now - self.day)
        with pytest.warns(CertificateValidityWarning, match=r"server certificate \(CN=dated.test\) expired on"):
            ServerOptions(expired, LEAF.key)

    def test_notYetValid(self):
        future = _certificate(self.now + self.day, self.now + 10 * self.day)
        with pytest.warns(CertificateValidityWarning, match="is not valid before"):
            ClientOptions("example.com", clientCertificate=future, clientKey=LEAF.key)

    def test_validIsQuiet(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error", CertificateValidityWarning)
            ServerOptions(LEAF.certificate, LEAF.key)
