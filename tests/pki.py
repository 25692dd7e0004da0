"""Certificates for the TLS tests: a CA of the test's own (trustme) and PEM files it signed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class Pki:
    """A CA and the files of a server certificate for 127.0.0.1/localhost it signed."""

    folder: Path
    ca: trustme.CA
    ca_file: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def create(cls, folder: Path) -> Pki:
        folder.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        pki = cls(folder, ca, folder / "ca.pem", folder / "server.pem", folder / "server.key")
        ca.cert_pem.write_to_path(str(pki.ca_file))
        write_server_cert(ca, pki.server_cert, pki.server_key)
        return pki

    def client(self, name: str) -> tuple[Path, Path]:
        """A client certificate (common name `name`) and its key."""
        leaf = self.ca.issue_cert(f"{name}.clients.test", common_name=name)
        cert, key = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        leaf.private_key_pem.write_to_path(str(key))
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        return cert, key


def write_server_cert(ca: trustme.CA, cert: Path, key: Path) -> None:
    """A new server certificate and key from `ca`, each written aside and renamed over the old file,
    as a Secret volume update does."""
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert.with_suffix(".new").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.with_suffix(".newkey").write_bytes(leaf.private_key_pem.bytes())
    cert.with_suffix(".new").replace(cert)
    key.with_suffix(".newkey").replace(key)
