"""The team: managers, their roles and availability."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError

from crm.errors import CrmError, NotFound
from crm.models import AuditLog, Manager
from crm.types import Availability, Role


class Managers:
    async def add(self, telegram_user_id: int, name: str, role: Role = Role.MANAGER,
                  username: str | None = None, capacity: int = 20,
                  actor: str = "cli", language: str | None = None) -> Manager:
        existing = await Manager.filter(telegram_user_id=telegram_user_id).first()
        if existing is not None and existing.active:
            raise CrmError(f"Telegram user {telegram_user_id} is already a manager "
                           f"({existing.name}, {existing.role.value})")
        if existing is not None:  # re-adding someone who was removed
            existing.name, existing.role, existing.active = name, role, True
            existing.username, existing.capacity = username, capacity
            existing.language = language or existing.language
            await existing.save()
            manager = existing
        else:
            try:
                manager = await Manager.create(telegram_user_id=telegram_user_id, name=name,
                                               role=role, username=username, capacity=capacity,
                                               language=language)
            except IntegrityError:
                raise CrmError(f"Telegram user {telegram_user_id} is already a manager") from None
        await AuditLog.create(actor=actor, action="manager.added",
                              detail={"manager_id": manager.id, "role": role.value})
        return manager

    async def remove(self, telegram_user_id: int, actor: str = "cli") -> Manager:
        manager = await Manager.filter(telegram_user_id=telegram_user_id, active=True).first()
        if manager is None:
            raise NotFound(f"no manager with Telegram user id {telegram_user_id}")
        manager.active = False
        manager.availability = Availability.AWAY
        await manager.save(update_fields=["active", "availability"])
        await AuditLog.create(actor=actor, action="manager.removed",
                              detail={"manager_id": manager.id})
        return manager

    async def list(self, include_removed: bool = False) -> list[Manager]:
        qs = Manager.all() if include_removed else Manager.filter(active=True)
        return await qs.order_by("id")

    async def by_telegram(self, telegram_user_id: int) -> Manager | None:
        return await Manager.filter(telegram_user_id=telegram_user_id, active=True).first()

    async def by_username(self, username: str) -> Manager | None:
        return await Manager.filter(username__iexact=username.lstrip("@"), active=True).first()

    async def set_availability(self, manager: Manager, availability: Availability) -> None:
        manager.availability = availability
        await manager.save(update_fields=["availability"])
