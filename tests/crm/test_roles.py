"""Who may do what (crm/roles.py): the rule every console page and action is checked against."""

from __future__ import annotations

import pytest

from crm.roles import GRANTS, Permission, allows
from crm.types import Role


def test_every_role_has_its_grants_and_admins_have_everything() -> None:
    assert set(GRANTS) == set(Role)
    assert all(allows(Role.ADMIN, p) for p in Permission)


@pytest.mark.parametrize(("role", "permission", "allowed"), [
    # A marketer never has the inbox: someone doing both jobs is an admin.
    (Role.MARKETER, Permission.INBOX, False),
    (Role.MARKETER, Permission.SEGMENTS, True),
    (Role.MARKETER, Permission.CAMPAIGNS, True),
    (Role.MARKETER, Permission.CAMPAIGN_SCHEDULE, True),
    (Role.MARKETER, Permission.REPORTS, True),
    (Role.MARKETER, Permission.ORDERS, False),
    (Role.MARKETER, Permission.TEAM, False),
    # A lead reads the reports and answers like a manager, and never sends a campaign.
    (Role.LEAD, Permission.REPORTS, True),
    (Role.LEAD, Permission.INBOX, True),
    (Role.LEAD, Permission.CAMPAIGN_SCHEDULE, False),
    (Role.LEAD, Permission.CAMPAIGNS, False),
    (Role.LEAD, Permission.SEGMENTS, False),
    (Role.LEAD, Permission.TEAM, False),
    (Role.MANAGER, Permission.ORDERS, True),
    (Role.MANAGER, Permission.ORDER_STATUS, True),
    (Role.MANAGER, Permission.ORDER_IMPORT, False),
    (Role.MANAGER, Permission.REPORTS, False),
    (Role.MANAGER, Permission.CAMPAIGN_SCHEDULE, False),
])
def test_the_rules(role: Role, permission: Permission, allowed: bool) -> None:
    assert allows(role, permission) is allowed
