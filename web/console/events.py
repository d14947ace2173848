"""`/console/events`: server-sent events from the live feed (crm/live.py).

On connecting the stream says `ready`: the page fetches its live parts once then, so what
changed between the page's render and the stream's start is not missed. Each change is sent
twice: as `inbox` (the inbox list looks again) and as `customer-ID` (that
customer's page looks again); the data is the change as JSON. The page's htmx (sse extension)
turns them into requests for the part that changed, rendered by the server as ever.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from crm.live import LiveFeed
from crm.roles import Permission
from web.console.guard import Visit, staff

LIVE = web.AppKey("live", LiveFeed)
STREAMS = web.AppKey("streams", set[EventSourceResponse])
PING_SECONDS = 15


@staff(Permission.INBOX)
async def events(visit: Visit) -> web.StreamResponse:
    app = visit.request.app
    feed = app[LIVE]
    queue = feed.subscribe()
    try:
        async with sse_response(visit.request, headers={"Cache-Control": "no-store"},
                                ping_interval=PING_SECONDS) as resp:
            app[STREAMS].add(resp)
            gone = asyncio.ensure_future(resp.wait())  # ends when the browser leaves
            try:
                await resp.send("ready", event="ready")
                while True:
                    got = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait({got, gone},
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if got not in done:
                        got.cancel()
                        break
                    event = got.result()
                    data = event.to_json()
                    await resp.send(data, event="inbox")
                    await resp.send(data, event=f"customer-{event.customer_id}")
            except ConnectionResetError:
                pass  # the browser left while we wrote
            finally:
                gone.cancel()
                app[STREAMS].discard(resp)
        return resp
    finally:
        feed.unsubscribe(queue)


async def close_streams(app: web.Application) -> None:
    """On shutdown: end the open streams, or the server would wait for browsers to leave."""
    streams: set[EventSourceResponse] = app[STREAMS]
    for resp in tuple(streams):
        resp.stop_streaming()
