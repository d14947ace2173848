"""The web chat with many visitors at once: memory per open chat, and a message's round trip.

    .venv/bin/python bench/webchat.py            # 1,000 visitors, 300 round trips each way
    .venv/bin/python bench/webchat.py --quick    # 200 visitors, 60 round trips

It runs the real service (`crm run`, SQLite, the web chat on, logging at WARNING) as a child
process, so that its memory is its own, and plays the visitors from this process over real
HTTP, as the widget does: a session, a first message (each visitor is a customer), then an
open event stream (`/webchat/events`) per visitor.

- Memory per open chat: the growth of the service's resident memory (VmRSS) from a tenth of the
  streams open to all of them, idle, divided by the streams opened in between (the first tenth
  takes up the memory the process had freed before, which a process reuses before it grows).
- Round trip: a visitor presses the Help button (`POST /webchat/messages`, action "help") and
  waits for the bot's answer on their stream: the message goes through the customer dialogue,
  its answer into the outbox, out through the web chat's sender, and to the stream through the
  live feed. First with one visitor's stream open and nobody else, one press at a time (the
  baseline); then with every visitor's stream open, presses from random visitors at a steady
  rate (`--rate`, default 20 a second, overlapping as they come). It prints p50, p99 and the
  largest of each, and the same for a burst: every visitor pressing at once.

Goal (issue 14): p99 under 200 ms with 1,000 open chats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import aiohttp  # noqa: E402

from tests.support.procs import free_port  # noqa: E402
from tests.support.webchat_visitor import Visitor  # noqa: E402

CRM = str(Path(sys.executable).parent / "crm")


def config(tmp: Path, port: int) -> str:
    return f"""
[database]
url = "sqlite://{tmp}/bench.sqlite3"
[http]
port = {port}
public_url = "http://127.0.0.1:{port}"
link_secret = "bench-link-secret-0123456789abcdef"
[files]
dir = "{tmp}/files"
[logging]
level = "WARNING"
[bot]
acknowledge = []
[console]
enabled = false
[api]
enabled = false
[webchat]
enabled = true
visitor_rate_per_minute = 100000
visitor_burst = 10000
ip_rate_per_minute = 100000000
ip_burst = 1000000
streams_per_ip = 100000
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def started(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the service answers /healthz."""
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"crm run exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError("crm run did not start")


async def round_trip(visitor: Visitor) -> float:
    """Press Help; seconds until the bot's answer is on the visitor's stream."""
    seen = len(visitor.events)
    start = time.perf_counter()
    await visitor.presses("help")

    def answered() -> float | None:
        return next((at for kind, m, at in visitor.events[seen:]
                     if kind == "message" and m["from"] == "bot"), None)

    arrived: float = await visitor.wait_for(answered, timeout=60)
    return arrived - start


async def listen(visitors: list[Visitor]) -> None:
    for group in range(0, len(visitors), 100):
        batch = visitors[group:group + 100]
        for v in batch:  # a visitor listened before: a new stream, a fresh record
            v.events.clear()
            v._reader = v._stream = None
        await asyncio.gather(*(v.listen() for v in batch))


async def open_chats(http: aiohttp.ClientSession, base: str) -> str:
    """What the service says of its web chat: "N open chat(s)"."""
    async with http.get(f"{base}/healthz") as r:
        return str((await r.json())["channels"]["webchat"]["detail"])


def line(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (f"  {name:<44} n={len(ms):>5}  p50 {statistics.median(ms):7.1f} ms  "
            f"p99 {p99:7.1f} ms  max {ms[-1]:7.1f} ms")


async def bench(base: str, pid: int, visitors: int, trips: int, rate: float) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        await run(http, base, pid, visitors, trips, rate)


async def run(http: aiohttp.ClientSession, base: str, pid: int, count: int, trips: int,
              rate: float) -> None:
    print(f"web chat: {count} visitors, {trips} round trips, SQLite, one `crm run` process")
    crowd = [Visitor(http, base) for _ in range(count)]
    for group in range(0, count, 100):
        await asyncio.gather(*(v.start() for v in crowd[group:group + 100]))
    # Memory: every visitor's stream open and idle, against none (only sessions so far, which
    # leave little behind).
    await asyncio.sleep(1)
    before = rss_kib(pid)
    await listen(crowd)
    await asyncio.sleep(2)
    after = rss_kib(pid)
    print(f"  service memory: {before / 1024:.1f} MiB with no chat open, "
          f"{after / 1024:.1f} MiB with {await open_chats(http, base)} open: "
          f"{(after - before) / count:.1f} KiB per open chat")
    await asyncio.gather(*(v.close() for v in crowd))
    for group in range(0, count, 100):  # a first message each: every visitor is a customer
        await asyncio.gather(*(v.says("hello") for v in crowd[group:group + 100]))
    # The baseline: one visitor's stream, nobody else's.
    alone = crowd[0]
    await listen([alone])
    for _ in range(5):
        await round_trip(alone)  # warm up
    baseline = [await round_trip(alone) for _ in range(trips)]
    await listen(crowd[1:])
    print(f"  open chats for the round trips: {await open_chats(http, base)}")
    # Round trips at a steady rate from random visitors, every stream open.
    samples: list[float] = []

    async def one(v: Visitor) -> None:
        samples.append(await round_trip(v))

    tasks = []
    # Each from another visitor (while there are enough): a press waits for its own answer.
    chosen = random.sample(crowd, trips) if trips <= count else \
        [random.choice(crowd) for _ in range(trips)]
    for visitor in chosen:
        tasks.append(asyncio.create_task(one(visitor)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    # A burst: every visitor presses at once.
    start = time.perf_counter()
    burst = await asyncio.gather(*(round_trip(v) for v in crowd))
    took = time.perf_counter() - start
    print("round trip: press Help, the bot's answer on the visitor's stream")
    print(line("1 open chat, one press at a time (baseline)", baseline))
    print(line(f"{count} open chats, {rate:g} presses a second", samples))
    print(line(f"{count} open chats, all pressing at once", burst) +
          f"  ({count / took:.0f} answers/s)")
    p99 = sorted(samples)[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000
    print(f"goal: p99 under 200 ms with {count} open chats: "
          f"{'met' if p99 < 200 else 'NOT met'} ({p99:.1f} ms)")
    await asyncio.gather(*(v.close() for v in crowd))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 visitors, 60 round trips")
    parser.add_argument("--visitors", type=int)
    parser.add_argument("--trips", type=int)
    parser.add_argument("--rate", type=float, default=20.0,
                        help="presses a second with every chat open")
    args = parser.parse_args()
    visitors = args.visitors or (200 if args.quick else 1000)
    trips = args.trips or (60 if args.quick else 300)
    with tempfile.TemporaryDirectory(prefix="crm-bench-webchat-") as d:
        tmp = Path(d)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        (tmp / "config.toml").write_text(config(tmp, port))
        with (tmp / "crm.log").open("wb") as log:
            proc = subprocess.Popen([CRM, "run", "-c", str(tmp / "config.toml")], cwd=tmp,
                                    stdout=log, stderr=subprocess.STDOUT)
            try:
                asyncio.run(started(base, proc))
                asyncio.run(bench(base, proc.pid, visitors, trips, args.rate))
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            errors = [ln for ln in (tmp / "crm.log").read_text().splitlines()
                      if "error" in ln.lower() or "Traceback" in ln]
            if errors:
                print("the service logged errors:\n" + "\n".join(errors[:20]))


if __name__ == "__main__":
    main()
