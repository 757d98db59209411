"""The stack's own certificate authority: made once per stack (state folder, 0700; keys 0600), it
signs the certificates of the servers that speak TLS (Trino's client port, SeaweedFS's gRPC
ports), and clients trust it (`ca_file`)."""

from __future__ import annotations

import datetime
import fcntl
import functools
import ipaddress
import os
import ssl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lakelab.settings import Settings

VALID_FOR = datetime.timedelta(days=3650)
PEM = serialization.Encoding.PEM


def folder(settings: Settings) -> Path:
    return settings.state_dir / "secrets" / "tls"


@contextmanager
def _made_alone(settings: Settings) -> Iterator[None]:
    """One maker of certificates at a time, across threads and processes: services start in
    parallel, and two CAs made at once would leave a server's certificate signed by the CA that
    lost the race to ca.crt."""
    lock = folder(settings) / ".lock"
    for parent in (lock.parent.parent, lock.parent):  # secrets/ and secrets/tls/, both private
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def ca_file(settings: Settings) -> Path:
    """The CA certificate clients trust (made on first use; a container gets it, without the CA's key)."""
    cert = folder(settings) / "ca.crt"
    if not cert.exists():
        with _made_alone(settings):
            _ensure_ca(settings)
    return cert


def client_context(settings: Settings) -> ssl.SSLContext:
    """TLS for a client of the stack's servers (httpx's `verify=`): the stack's CA only."""
    return ssl.create_default_context(cafile=str(ca_file(settings)))


@functools.cache
def public_context() -> ssl.SSLContext:
    """httpx's default TLS (certifi's CAs, or SSL_CERT_FILE's), made once. An httpx call given no
    `verify=` builds it anew, 14-18 ms of CPU, even for a plain-HTTP URL: readiness checks polled
    every 0.1 s spent about a CPU-second so while the stack started."""
    return httpx.create_ssl_context()


def certificate(settings: Settings, name: str, hosts: tuple[str, ...]) -> tuple[Path, Path]:
    """(certificate, key) of `name`, valid for `hosts` as server and as client, made once."""
    cert, key = folder(settings) / f"{name}.crt", folder(settings) / f"{name}.key"
    if cert.exists():
        return cert, key
    with _made_alone(settings):
        if cert.exists():  # made by another while this one waited
            return cert, key
        ca_cert, ca_key = _ensure_ca(settings)
        private = ec.generate_private_key(ec.SECP256R1())
        names = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in hosts]
        signed = (_builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_cert.subject, private)
                  .add_extension(x509.SubjectAlternativeName(names), critical=False)
                  .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                        ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                  .sign(ca_key, hashes.SHA256()))
        _write(key, _key_pem(private))
        _write(cert, signed.public_bytes(PEM))
    return cert, key


def _ensure_ca(settings: Settings) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert, key = folder(settings) / "ca.crt", folder(settings) / "ca.key"
    if not cert.exists():
        private = ec.generate_private_key(ec.SECP256R1())
        # a name of its own (a CN holds 64 characters at most: not the state folder's path)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"lakelab stack CA {uuid.uuid4().hex[:12]}")])
        signed = (_builder(name, name, private).add_extension(x509.BasicConstraints(ca=True, path_length=0),
                                                              critical=True).sign(private, hashes.SHA256()))
        _write(key, _key_pem(private))
        _write(cert, signed.public_bytes(PEM))
    return (x509.load_pem_x509_certificate(cert.read_bytes()),
            serialization.load_pem_private_key(key.read_bytes(), password=None))


def _builder(subject: x509.Name, issuer: x509.Name, private: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(private.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR))


def _key_pem(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _write(path: Path, data: bytes) -> None:
    """Written whole, then renamed into place: a reader never sees half a file. Called only under
    `_made_alone`, which made the private folders."""
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(draft, path)
