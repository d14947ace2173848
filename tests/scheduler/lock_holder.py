"""A stand-in for a `crm run` process competing for the scheduler's lock (for the takeover test).

`python -m tests.scheduler.lock_holder DB_URL LOCK_ID` prints "leading" or "following" whenever
that changes, trying every 50 ms, until killed.
"""

from __future__ import annotations

import asyncio
import sys

from crm.leader import Leadership


async def main(url: str, lock_id: int) -> None:
    leadership = Leadership(url, lock_id)
    said = ""
    while True:
        state = "leading" if await leadership.ensure() else "following"
        if state != said:
            print(state, flush=True)
            said = state
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
