"""Test certificates made with `cryptography`: a CA, server and client certificates.

Everything is generated in memory per test session (EC P-256, fast) and written to
files where turnout or Envoy needs paths.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Authority", "KeyPair"]

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class KeyPair:
    """A certificate (PEM) and its private key (PEM)."""

    cert: bytes
    key: bytes

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``NAME.crt`` and ``NAME.key`` into ``directory``; return their paths."""
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_bytes(self.cert)
        key.write_bytes(self.key)
        return cert, key

    @property
    def serial(self) -> int:
        """The certificate's serial number (tells two certificates apart)."""
        return x509.load_pem_x509_certificate(self.cert).serial_number


class Authority:
    """A self-signed certificate authority that issues leaf certificates."""

    def __init__(self, name: str = "turnout test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._name = subject
        self.cert_pem = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )

    def write(self, directory: Path, name: str = "ca") -> Path:
        """Write the CA certificate to ``NAME.crt``; return its path."""
        path = directory / f"{name}.crt"
        path.write_bytes(self.cert_pem)
        return path

    def server(self, *, dns: tuple[str, ...] = ("localhost",), ip: str = "127.0.0.1") -> KeyPair:
        """A server certificate for ``dns`` names and ``ip``."""
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        return self._issue(dns[0] if dns else ip, sans, ExtendedKeyUsageOID.SERVER_AUTH)

    def client(
        self, *, spiffe: str | None = None, dns: tuple[str, ...] = (), cn: str = "envoy"
    ) -> KeyPair:
        """A client certificate with a SPIFFE URI SAN and/or DNS SANs."""
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        if spiffe is not None:
            sans.append(x509.UniformResourceIdentifier(spiffe))
        return self._issue(cn, sans, ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(
        self, cn: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier
    ) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return KeyPair(
            cert=cert.public_bytes(serialization.Encoding.PEM),
            key=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
