"""Credentials read from files (Kubernetes Secrets mounted as volumes) and re-read when they change.

A rotated Secret appears in a running pod as new files; checking the files' signatures on use (a
`stat`, microseconds: recsys_client.credentials.WatchedFiles, which the clients' token files use
too) picks it up without a restart, and `reload()` (SIGHUP) forces a re-read. A replacement that
cannot be used (half written, a key that does not match its certificate) is logged and the previous
credentials stay in force: a bad rotation never takes a server down.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from recsys.shared.access import CredentialsError, TokenBook
from recsys.shared.logs import log_event
from recsys_client.credentials import WatchedFiles, file_signature

_log = logging.getLogger(__name__)


class TokenSource:
    """The tokens a server accepts: a file (re-read when it changes) plus entries from the environment.

    A file that reads as no token at all is refused (at start) or ignored (on reload): an empty
    Secret must not silently turn authentication off.
    """

    def __init__(self, path: Path | None = None, inline: str = "") -> None:
        self._inline = TokenBook.parse(inline, "RECSYS_AUTH_TOKENS") if inline else TokenBook()
        self._path = path
        self._watch = WatchedFiles((path,)) if path else None
        self._book = self._inline
        self.configured = path is not None or bool(inline)
        if path is not None:
            self._book = self._inline + self._read_file(path)
            self._watch.read(file_signature((path,)))  # type: ignore[union-attr]

    @staticmethod
    def _read_file(path: Path) -> TokenBook:
        try:
            book = TokenBook.parse(path.read_text(encoding="utf-8"), f"tokens file {path}")
        except OSError as exc:
            raise CredentialsError(f"cannot read the tokens file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CredentialsError(f"the tokens file {path} is not UTF-8 text") from None
        if len(book) == 0:
            raise CredentialsError(f"the tokens file {path} holds no token")
        return book

    def reload(self) -> None:
        if self._watch is not None:
            self._watch.reload()

    def current(self) -> TokenBook:
        if self._watch is None or self._path is None:
            return self._book
        signature = self._watch.changed()
        if signature is not None:
            try:
                self._book = self._inline + self._read_file(self._path)
                log_event(_log, "tokens_reloaded", file=str(self._path), tokens=len(self._book))
            except CredentialsError as exc:
                log_event(_log, "tokens_reload_failed", logging.ERROR, error=str(exc), kept=len(self._book))
            self._watch.read(signature)
        return self._book


@dataclass(frozen=True)
class KeyPair:
    """A certificate chain and its private key (PEM), checked to belong together, with an optional CA."""

    certificate: bytes
    private_key: bytes
    client_ca: bytes | None = None


class CertificateFiles:
    """A server's certificate, key and (for mTLS) client CA files, re-read when they change."""

    def __init__(self, certificate: Path, private_key: Path, client_ca: Path | None = None) -> None:
        self.certificate = certificate
        self.private_key = private_key
        self.client_ca = client_ca
        paths = (certificate, private_key) + ((client_ca,) if client_ca else ())
        self._watch = WatchedFiles(paths)
        signature = self._watch.changed()
        self.current = self._load()
        self._watch.read(signature)  # type: ignore[arg-type]

    def _read(self) -> KeyPair:
        return KeyPair(
            self.certificate.read_bytes(),
            self.private_key.read_bytes(),
            self.client_ca.read_bytes() if self.client_ca else None,
        )

    def _load(self) -> KeyPair:
        try:
            for _ in range(3):
                pair = self._read()
                # The standard library refuses a key that does not match the certificate: checked here, a
                # mismatch would only show as every handshake failing.
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.certificate, self.private_key)
                # Unchanged since read: the pair checked is the pair handed to gRPC (a Secret update
                # swaps every file at once, between two reads at worst).
                if self._read() == pair:
                    return pair
            raise CredentialsError(f"TLS files {self.certificate} and {self.private_key} keep changing")
        except (OSError, ssl.SSLError) as exc:
            raise CredentialsError(
                f"TLS files {self.certificate} and {self.private_key} cannot be used: {exc}"
            ) from None

    def reload(self) -> None:
        self._watch.reload()

    def replacement(self) -> KeyPair | None:
        """New key material when the files changed and can be used; None to keep the current."""
        signature = self._watch.changed()
        if signature is None:
            return None
        self._watch.read(signature)
        try:
            self.current = self._load()
        except CredentialsError as exc:
            log_event(_log, "tls_reload_failed", logging.ERROR, error=str(exc))
            return None
        log_event(_log, "tls_reloaded", certificate=str(self.certificate))
        return self.current
