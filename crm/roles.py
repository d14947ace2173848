"""What each role of the team may do, wherever they do it (the web console checks every page
and action against this; the managers' chat is for managers and admins)."""

from __future__ import annotations

from enum import StrEnum

from crm.types import Role


class Permission(StrEnum):
    INBOX = "inbox"  # conversations: read them, reply, note, assign, close, reopen, tag
    CUSTOMERS = "customers"  # customers' cards and timelines: read
    TEAM = "team"  # managers (add, role, capacity, availability) and API keys


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: frozenset({Permission.INBOX, Permission.CUSTOMERS}),
    # Customers to read; the campaign pages to come will add theirs.
    Role.MARKETER: frozenset({Permission.CUSTOMERS}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS.get(role, frozenset())
