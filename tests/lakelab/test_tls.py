"""The stack's CA: services start in parallel, and each server's certificate must be signed by the
one CA that clients trust, however many ask for certificates at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509

from lakelab import tls
from lakelab.settings import Settings


@pytest.mark.unit
def test_certificates_asked_for_at_once_are_all_signed_by_the_ca_clients_trust(tmp_path):
    settings = Settings(state_dir=tmp_path / "state")
    names = [f"server{n}" for n in range(8)]
    with ThreadPoolExecutor(len(names)) as pool:
        made = list(pool.map(lambda name: tls.certificate(settings, name, ("127.0.0.1", name)), names))
    ca = x509.load_pem_x509_certificate(tls.ca_file(settings).read_bytes())
    for cert, key in made:
        x509.load_pem_x509_certificate(cert.read_bytes()).verify_directly_issued_by(ca)
        assert key.stat().st_mode & 0o077 == 0
    for folder in (tls.folder(settings), tls.folder(settings).parent):
        assert folder.stat().st_mode & 0o077 == 0, folder
    assert sorted(p.name for p in tls.folder(settings).iterdir() if not p.name.startswith(".")) == \
        sorted(["ca.crt", "ca.key", *(f"{n}.crt" for n in names), *(f"{n}.key" for n in names)])
