"""The team: managers, their roles, availability and ways in (Telegram, email and password)."""

from __future__ import annotations

import re

from tortoise.exceptions import IntegrityError

from crm.errors import CrmError, NotFound
from crm.models import AuditLog, Manager
from crm.passwords import hash_password
from crm.types import Availability, Role

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise CrmError(f"{email!r} is not an email address (name@example.com)")
    return value


class Managers:
    async def add(self, telegram_user_id: int | None, name: str, role: Role = Role.MANAGER,
                  username: str | None = None, capacity: int = 20,
                  actor: str = "cli", language: str | None = None,
                  email: str | None = None) -> Manager:
        """A new member of the team, on Telegram (`telegram_user_id`), by email (the web
        console, with a password set next), or both."""
        if telegram_user_id is None and not email:
            raise CrmError("give a Telegram user id, an email (--email), or both")
        if not name.strip():
            raise CrmError("give the manager a name")
        address = normalize_email(email) if email else None
        existing = await Manager.filter(telegram_user_id=telegram_user_id).first() \
            if telegram_user_id is not None else None
        if existing is None and address is not None:
            existing = await Manager.filter(email=address).first()
        if existing is not None and existing.active:
            way = f"Telegram user {telegram_user_id}" if telegram_user_id is not None \
                and existing.telegram_user_id == telegram_user_id else address
            raise CrmError(f"{way} is already a manager ({existing.name}, "
                           f"{existing.role.value})")
        try:
            if existing is not None:  # re-adding someone who was removed
                existing.name, existing.role, existing.active = name, role, True
                existing.username, existing.capacity = username, capacity
                existing.language = language or existing.language
                existing.email = address or existing.email
                existing.telegram_user_id = telegram_user_id or existing.telegram_user_id
                await existing.save()
                manager = existing
            else:
                manager = await Manager.create(telegram_user_id=telegram_user_id, name=name,
                                               role=role, username=username, capacity=capacity,
                                               language=language, email=address)
        except IntegrityError:
            raise CrmError("that Telegram user id or email belongs to another manager") from None
        await AuditLog.create(actor=actor, action="manager.added",
                              detail={"manager_id": manager.id, "role": role.value})
        return manager

    async def remove(self, telegram_user_id: int, actor: str = "cli") -> Manager:
        manager = await Manager.filter(telegram_user_id=telegram_user_id, active=True).first()
        if manager is None:
            raise NotFound(f"no manager with Telegram user id {telegram_user_id}")
        return await self.deactivate(manager, actor)

    async def deactivate(self, manager: Manager, actor: str) -> Manager:
        manager.active = False
        manager.availability = Availability.AWAY
        await manager.save(update_fields=["active", "availability"])
        await AuditLog.create(actor=actor, action="manager.removed",
                              detail={"manager_id": manager.id})
        return manager

    async def list(self, include_removed: bool = False) -> list[Manager]:
        qs = Manager.all() if include_removed else Manager.filter(active=True)
        return await qs.order_by("id")

    async def get(self, manager_id: int) -> Manager:
        manager = await Manager.filter(id=manager_id, active=True).first()
        if manager is None:
            raise NotFound(f"no manager #{manager_id}")
        return manager

    async def find(self, ref: str) -> Manager:
        """A manager by email, @username, #id, Telegram id or name (which must be unique)."""
        ref = ref.strip()
        active = Manager.filter(active=True)
        if "@" in ref[1:]:
            found = await active.filter(email=ref.lower())
        elif ref.startswith("@"):
            found = await active.filter(username__iexact=ref[1:])
        elif ref.startswith("#") and ref[1:].isdigit():
            found = await active.filter(id=int(ref[1:]))
        elif ref.isdigit():
            found = await active.filter(telegram_user_id=int(ref))
        else:
            found = await active.filter(name__iexact=ref)
        if not found:
            what = f"with Telegram user id {ref}" if ref.isdigit() else repr(ref)
            raise NotFound(f"no manager {what} (see `crm managers list`)")
        if len(found) > 1:
            raise CrmError(f"{len(found)} managers are called {ref!r}: name one by email or "
                           "#id (see `crm managers list`)")
        return found[0]

    async def by_telegram(self, telegram_user_id: int) -> Manager | None:
        return await Manager.filter(telegram_user_id=telegram_user_id, active=True).first()

    async def by_username(self, username: str) -> Manager | None:
        return await Manager.filter(username__iexact=username.lstrip("@"), active=True).first()

    async def set_availability(self, manager: Manager, availability: Availability) -> None:
        manager.availability = availability
        await manager.save(update_fields=["availability"])

    async def set_password(self, manager: Manager, password: str, actor: str = "cli") -> None:
        """Set (or replace) a manager's console password; it needs an email to sign in with."""
        if not manager.email:
            raise CrmError(f"{manager.name} has no email to sign in with: add one first")
        manager.password_hash = await hash_password(password)
        await manager.save(update_fields=["password_hash"])
        await AuditLog.create(actor=actor, action="manager.password_set",
                              detail={"manager_id": manager.id})

    async def update(self, manager: Manager, *, actor: str, role: Role | None = None,
                     capacity: int | None = None) -> Manager:
        """Change a manager's role or capacity (availability: crm/routing.py, which drains the
        queue when someone comes online)."""
        changed: list[str] = []
        if role is not None and role is not manager.role:
            if manager.role is Role.ADMIN and not await Manager.filter(
                    role=Role.ADMIN, active=True).exclude(id=manager.id).exists():
                raise CrmError("the team needs at least one admin: make someone else admin "
                               "first")
            manager.role = role
            changed.append("role")
        if capacity is not None and capacity != manager.capacity:
            if not 1 <= capacity <= 1000:
                raise CrmError("capacity must be between 1 and 1000 open conversations")
            manager.capacity = capacity
            changed.append("capacity")
        if changed:
            await manager.save(update_fields=changed)
            await AuditLog.create(actor=actor, action="manager.updated",
                                  detail={"manager_id": manager.id, "fields": changed})
        return manager
