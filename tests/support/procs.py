"""Starting real servers for tests: child processes that die with the test run, free ports."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence

import pytest

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(path_or_name: str, package: str) -> str:
    """The binary's path. A missing server fails the test, in CI and elsewhere: a suite that
    skips what it cannot run proves nothing (scripts/test installs every server)."""
    found = path_or_name if os.path.isabs(path_or_name) and os.access(path_or_name, os.X_OK) \
        else shutil.which(path_or_name)
    if found:
        return found
    pytest.fail(f"{path_or_name} not found: install the Debian package {package} "
                "(scripts/test does)")


def start(args: Sequence[str], *, log_path: str, user: str | None = None,
          env: dict[str, str] | None = None, cwd: str | None = None,
          own_group: bool = False) -> subprocess.Popen[bytes]:
    """`own_group`: the server and everything it starts form a process group of their own, so
    that `os.killpg` reaches a child it spawned a moment ago too."""
    as_user = user if user and os.geteuid() == 0 else None
    # Popen's user/group (not runuser) so that our signals reach the server itself.
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd, preexec_fn=_die_with_parent, user=as_user,
                                group=as_user, extra_groups=[] if as_user else None,
                                process_group=0 if own_group else None)


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20,
              log_path: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = open(log_path).read()[-2000:] if log_path else ""  # noqa: SIM115
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def wait_for(check: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} not reached after {timeout}s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
