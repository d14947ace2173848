"""Staff passwords: argon2id hashes (argon2-cffi's defaults, ~76 ms and 64 MiB a hash).

Hashing and checking run in a worker thread: on the event loop they would stall every other
request for that long.
"""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crm.errors import CrmError

MIN_LENGTH = 10
MAX_LENGTH = 1024


class WeakPassword(CrmError):
    """A password the console will not take; the message says why."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy() -> str:
    # Checked against when no account matches, so a wrong email costs as long as a wrong password.
    return _hasher().hash("no account has this password")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password is too short: use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password is too long: use at most {MAX_LENGTH} characters")


async def hash_password(password: str) -> str:
    check_strength(password)
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored` (None: no password set, always False)."""
    if len(password) > MAX_LENGTH:
        return False

    def check() -> bool:
        try:
            return _hasher().verify(stored or _dummy(), password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
