"""Actors as the team reads them, in either language. Pure."""

from __future__ import annotations

from crm.actors import actor_text
from crm.i18n import in_language


def test_actor_ids_read_as_names_in_the_reader_s_language() -> None:
    def read(actor: str, lang: str, name: str | None = None) -> str:
        return in_language(actor_text(actor, name), lang)

    assert read("routing", "en") == "automatic routing"
    assert read("routing", "ru") == "автоматическое распределение"
    assert read("api:3", "en") == "API key 3" and read("api:shop", "ru") == "ключ API shop"
    assert read("import:orders.csv", "ru") == "импорт из orders.csv"
    assert read("manager:7", "en", "Bob") == "Bob" and read("manager:7", "ru") == "менеджер #7"
    assert read("customer", "ru") == "клиент" and read("cli", "en") == "the command line"
    assert read("webhook:odd", "ru") == "webhook:odd"  # a kind we do not know: as it is
