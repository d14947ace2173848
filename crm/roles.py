"""What each role of the team may do, wherever they do it (the web console checks every page
and action against this; the managers' chat is for managers and admins).

A person has one role. The roles are not layers: a marketer never has the inbox, a manager
never the campaigns. Someone who does both jobs (answers customers and runs broadcasts) is
given the admin role; a lead is a manager who also reads the reports (as in the managers'
chat, where a lead answers customers and asks for `/report`), and may not send or schedule a
campaign.
"""

from __future__ import annotations

from enum import StrEnum

from crm.types import Role


class Permission(StrEnum):
    INBOX = "inbox"  # conversations: read them, reply, note, assign, close, reopen, tag
    CUSTOMERS = "customers"  # customers' cards and timelines: read
    ORDERS = "orders"  # orders: list, search, read one with its history
    ORDER_STATUS = "order_status"  # move an order to a status (the customer is told)
    ORDER_IMPORT = "order_import"  # import orders from a CSV file
    REPORTS = "reports"  # the report dashboards, the rows behind them, CSV
    SEGMENTS = "segments"  # build and save segments of customers
    CAMPAIGNS = "campaigns"  # write campaigns, preview them, read their results
    # Anything that makes a campaign reach customers: test send, schedule, start, pause,
    # resume, cancel.
    CAMPAIGN_SCHEDULE = "campaign_schedule"
    TEAM = "team"  # managers (add, role, capacity, availability) and API keys


_MANAGER = frozenset({Permission.INBOX, Permission.CUSTOMERS, Permission.ORDERS,
                      Permission.ORDER_STATUS})

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: _MANAGER,
    Role.LEAD: _MANAGER | {Permission.REPORTS},
    # Customers to read (who a segment holds), never the inbox.
    Role.MARKETER: frozenset({Permission.CUSTOMERS, Permission.SEGMENTS, Permission.CAMPAIGNS,
                              Permission.CAMPAIGN_SCHEDULE, Permission.REPORTS}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS.get(role, frozenset())
