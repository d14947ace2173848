"""`/f/<token>`: a file of one of our messages, behind a signed, expiring link (crm/files.py).

What a customer opens from an SMS, and what Twilio fetches for an MMS. A changed token gets
403, an expired one 410, a file that is gone (the customer's data erased) 404. The web console
serves the same files to signed-in staff through `serve`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from crm.errors import CrmError
from crm.files import FileLinks
from crm.links import LinkExpired, LinkTampered
from crm.models import Message


async def serve(message_id: int, index: int) -> web.StreamResponse:
    """The `index`th file of a message, as a download (never shown inline: a customer's
    HTML or SVG file must not run as one of our pages)."""
    message = await Message.get_or_none(id=message_id)
    files = message.attachments if message is not None else []
    found = files[index] if 0 <= index < len(files) else None
    path = Path(str(found.get("path"))) if found and found.get("path") else None
    if found is None or path is None or not path.is_file():
        return web.Response(status=404, text="this file is no longer here\n")
    name = str(found.get("filename") or path.name)
    plain = name.encode("ascii", "replace").decode().replace('"', "").replace("?", "_")
    return web.FileResponse(path, headers={
        "Content-Type": str(found.get("mime_type") or "application/octet-stream"),
        "Content-Disposition": f"attachment; filename=\"{plain}\"; "
                               f"filename*=UTF-8''{quote(name)}",
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})


def mount(app: web.Application, links: FileLinks) -> None:
    async def download(request: web.Request) -> web.StreamResponse:
        try:
            message_id, index = await links.resolve(request.match_info["token"])
        except LinkExpired:
            return web.Response(status=410, text="this link has expired\n")
        except (LinkTampered, CrmError, ValueError, KeyError):
            return web.Response(status=403, text="this link is not valid\n")
        return await serve(message_id, index)

    app.router.add_get("/f/{token}", download)
