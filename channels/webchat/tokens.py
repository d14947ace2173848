"""Who a web chat visitor is: a random id, in a token signed with the key of every public link
(crm/links.py `Signer`, purpose "webchat"), kept by the visitor's browser (localStorage).

Every call carries the token; a changed one is refused (403), an expired one too (401), and
either way nothing is stored. A visit renews the token, so it expires `days` after the last.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from crm.errors import InvalidAddress
from crm.identity import normalize_visitor
from crm.links import LinkTampered, Signer

PURPOSE = "webchat"


def new_visitor_id() -> str:
    """`w` and 128 random bits: the visitor's address on the web chat channel."""
    return "w" + secrets.token_urlsafe(16)


class VisitorTokens:
    def __init__(self, signer: Signer, days: float) -> None:
        self.signer = signer
        self.days = days

    async def issue(self, visitor: str) -> tuple[str, datetime]:
        expires = self.signer.clock() + timedelta(days=self.days)
        return await self.signer.sign(PURPOSE, visitor, expires), expires

    async def visitor(self, token: str) -> str:
        """The visitor of a genuine, unexpired token; LinkTampered or LinkExpired otherwise."""
        if not token or len(token) > 400:
            raise LinkTampered("no token")
        visitor = await self.signer.verify(PURPOSE, token)
        try:
            return normalize_visitor(visitor)
        except InvalidAddress:
            raise LinkTampered("not a visitor's token") from None
