"""The first run, exactly as the README's first section tells it: `crm run` with
config.example.toml (on a free port) in an empty directory, no account of any kind; open `/`,
go to the demo shop, write as a customer; open the first admin's link from the log, answer in
the console; the answer is in the demo page's chat."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from playwright.async_api import BrowserContext, expect

from tests.support import procs
from tests.support.browser import browser, context

__all__ = ["browser", "context"]

ROOT = Path(__file__).resolve().parents[3]
CRM = str(Path(sys.executable).parent / "crm")
STARTED = 60.0


@dataclass
class Service:
    port: int
    process: asyncio.subprocess.Process
    log: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def first_admin_link(self) -> str:
        for line in self.log:
            if "console.first_admin" in line:
                found = re.search(r"url=(\S+)", line)
                assert found, line
                return found.group(1)
        raise AssertionError("the log has no console.first_admin line:\n" + "".join(self.log))


@pytest_asyncio.fixture
async def first_run(tmp_path: Path) -> AsyncIterator[Service]:
    """`crm run` in an empty directory with the example config, its port moved if need be."""
    port = procs.free_port()
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    (tmp_path / "config.toml").write_text(example.replace("8080", str(port)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    process = await asyncio.create_subprocess_exec(
        CRM, "run", "-c", "config.toml", cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    service = Service(port, process, [])
    reader = asyncio.create_task(_read(process, service.log))
    try:
        await asyncio.wait_for(_started(service), STARTED)
        yield service
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    assert process.returncode == 0, "".join(service.log[-30:])
    assert not any("Traceback" in line for line in service.log), "".join(service.log)


async def _read(process: asyncio.subprocess.Process, log: list[str]) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        log.append(raw.decode(errors="replace"))


async def _started(service: Service) -> None:
    while not any("crm.started" in line for line in service.log):
        if service.process.returncode is not None:
            raise AssertionError("crm run stopped:\n" + "".join(service.log))
        await asyncio.sleep(0.05)


async def test_the_first_run_as_the_readme_tells_it(first_run: Service,
                                                    context: BrowserContext) -> None:
    base = first_run.base
    assert any("channels=['webchat']" in line for line in first_run.log)  # no account needed
    # 1. `/` says what this is and leads to the demo shop, on another origin (localhost).
    shop = await context.new_page()
    await shop.goto(f"{base}/")
    await expect(shop.locator("h1")).to_have_text("chatcrm")
    await shop.click("#demo-link")
    await expect(shop).to_have_url(f"http://localhost:{first_run.port}/webchat/demo")
    # 2. A customer writes in the chat.
    widget = shop.locator("#chatcrm-webchat")
    await widget.locator(".launcher").click()
    await widget.locator("textarea").fill("Hello! Do you ship to Riga?")
    await widget.locator(".send").click()
    await expect(widget.locator(".msg.from-visitor")).to_contain_text("ship to Riga")
    await expect(widget.locator(".msg.from-bot")).to_be_visible()  # "we have your message"
    # 3. The log's one-time link makes the first admin.
    desk = await context.new_page()
    await desk.goto(first_run.first_admin_link())
    await desk.fill("input[name=name]", "Olga")
    await desk.fill("input[name=email]", "olga@example.com")
    await desk.fill("input[name=password]", "a long enough password")
    await desk.click("button[type=submit]")
    await expect(desk).to_have_url(re.compile(r"/console/team$"))
    # 4. The console's "All open" has the message; the answer reaches the chat at once.
    await desk.goto(f"{base}/console/inbox")
    await desk.click("[data-list=open]")
    await desk.click("#inbox .row .who")
    await expect(desk.locator("#timeline")).to_contain_text("Do you ship to Riga?")
    await desk.fill("textarea[name=text]", "Yes, in 3 days.")
    await desk.click("#send")
    await expect(widget.locator(".msg.from-team")).to_contain_text("Yes, in 3 days.")
    answer = desk.locator("#timeline .dir-out").filter(has_text="Yes, in 3 days.")
    await shop.bring_to_front()  # the chat on screen: read
    await expect(answer.locator(".delivery")).to_have_attribute("data-status", "read")
