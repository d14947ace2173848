"""Throwaway certificates for the TLS tests, made with the openssl command at session start.

`ca` signed the servers' certificate (for 127.0.0.1 and localhost); `other_ca` signed nothing we
serve, so a client that trusts only it must refuse our servers.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import procs

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_SERVER_EXT = """\
subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass(frozen=True)
class TlsFiles:
    ca: str  # PEM of the CA that signed the servers' certificate
    other_ca: str  # PEM of an unrelated CA
    cert: str  # the servers' certificate
    key: str  # and its key

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def _run(openssl: str, *args: str) -> None:
    done = subprocess.run([openssl, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {done.stderr.strip()}")


def _ca(openssl: str, directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _run(openssl, "req", "-x509", *_EC, "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN=CRM test {name}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_tls_files(directory: Path) -> TlsFiles:
    openssl = procs.require_binary("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca(openssl, directory, "ca")
    other_ca, _ = _ca(openssl, directory, "other-ca")
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text(_SERVER_EXT)
    _run(openssl, "req", "-new", *_EC, "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=localhost")
    _run(openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    key.chmod(0o644)  # Dovecot's config reader may run as another user
    return TlsFiles(str(ca), str(other_ca), str(cert), str(key))
