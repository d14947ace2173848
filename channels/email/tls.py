"""TLS for the mailbox and the SMTP server: one client context, and errors a person can act on.

Certificates are always verified (chain and host name). `tls_ca_file` adds a CA bundle to the
system's trust, for self-hosted servers whose certificate comes from their own CA.
"""

from __future__ import annotations

import ssl

from crm.config import EmailSettings


def client_context(settings: EmailSettings) -> ssl.SSLContext:
    """A verifying client context: the system's CAs plus `tls_ca_file` when set.

    (`ssl.create_default_context(cafile=...)` would trust only that file, not the system's.)
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.tls_ca_file:
        try:
            context.load_verify_locations(cafile=settings.tls_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"[email] tls_ca_file {settings.tls_ca_file!r} is not a PEM "
                             f"bundle of CA certificates: {e}") from e
    return context


def tls_error(error: BaseException) -> ssl.SSLError | None:
    """The TLS failure behind an error (libraries wrap it), if there is one."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe(error: ssl.SSLError, where: str) -> str:
    """What went wrong with the TLS of `where` and what to do about it."""
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = error.verify_message or error.reason or str(error)
        return (f"the TLS certificate of {where} is not trusted ({reason}); if the server uses "
                f"its own CA, set [email] tls_ca_file to that CA's PEM file")
    return f"TLS with {where} failed: {error.reason or error}"
