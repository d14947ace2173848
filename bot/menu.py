"""The customer's menu and keyboards, as Bot API markup (plain dicts the outbox can store)."""

from __future__ import annotations

from typing import Any

from crm.i18n import t

TALK, ORDERS, PHONE, HELP, OPT_IN = "menu:talk", "menu:orders", "menu:phone", "menu:help", \
    "menu:optin"


def main_menu(language: str, opted_out: bool) -> dict[str, Any]:
    rows = [[{"text": t("menu_talk", language), "callback_data": TALK}],
            [{"text": t("menu_orders", language), "callback_data": ORDERS}],
            [{"text": t("menu_phone", language), "callback_data": PHONE}],
            [{"text": t("menu_help", language), "callback_data": HELP}]]
    if opted_out:
        rows.append([{"text": t("menu_optin", language), "callback_data": OPT_IN}])
    return {"inline_keyboard": rows}


def phone_keyboard(language: str) -> dict[str, Any]:
    return {"keyboard": [[{"text": t("menu_phone", language), "request_contact": True}]],
            "resize_keyboard": True, "one_time_keyboard": True}


REMOVE_KEYBOARD: dict[str, Any] = {"remove_keyboard": True}
