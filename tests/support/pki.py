"""A test certificate authority: a CA, certificates it signs, and one it does not.

``make_pki(root)`` writes ``ca``, ``node``, ``client`` and ``rogue`` as
``NAME.pem`` (certificate) and ``NAME.key`` (PKCS#8 key); ``node`` and
``client`` are for ``localhost`` and ``127.0.0.1`` and signed by ``ca``;
``rogue`` signs itself.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_pem(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    *,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(root: Path) -> Path:
    """Write the test CA and its certificates under ``root``; returns ``root``."""
    ca_key = _key()
    ca_cert = _certificate("rumor test CA", ca_key, ca_key, None, ca=True)
    _write_pem(root / "ca", ca_key, ca_cert)
    for name in ("node", "client"):
        key = _key()
        _write_pem(root / name, key, _certificate(name, key, ca_key, ca_cert.subject, ca=False))
    rogue_key = _key()  # a certificate no trusted CA signed
    _write_pem(
        root / "rogue", rogue_key, _certificate("rogue", rogue_key, rogue_key, None, ca=False)
    )
    return root
