"""Run the real service (crm/app.py) in a child process with the HTTP test channel.

`python -m tests.support.service CONFIG`: like `crm run`, plus the test channel whose sends are
POSTed to $CRM_TEST_RECEIVER.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from crm import logs
from crm.app import App
from crm.config import load_settings
from tests.support import http_channel


async def main(path: str) -> None:
    settings = load_settings(path)
    logs.setup(settings.logging.level, settings.logging.format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with App(settings, extra_channels=[http_channel.build]):
        print("service ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1]))
