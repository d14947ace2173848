"""The statuses of `[orders]`: codes, labels per language, which ones notify, which are final.

Pure. A final status (delivered, cancelled by default) is where an order stays: moving it on is
refused (`StatusConflict`, 409 in the API), since a delivered order that becomes "paid" again is
almost always a mistake in the shop's feed; posting the status it already has is no change.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm.errors import Conflict, CrmError
from crm.i18n import Label
from crm.settings_orders import OrderStatusSettings


class UnknownStatus(CrmError):
    """A status code that `[orders]` does not define; the message lists the known ones."""


class StatusConflict(Conflict):
    """A move out of a final status."""


class Statuses:
    def __init__(self, statuses: Sequence[OrderStatusSettings]) -> None:
        self._by_code = {s.code: s for s in statuses}
        self.initial = statuses[0].code

    @property
    def codes(self) -> list[str]:
        return list(self._by_code)

    def get(self, code: str) -> OrderStatusSettings:
        found = self._by_code.get(code.strip().lower())
        if found is None:
            raise UnknownStatus(f"unknown status {code!r}: use one of "
                                f"{', '.join(self._by_code)} (see [orders] in the config)")
        return found

    def label(self, code: str, language: str | None = None) -> str:
        found = self._by_code.get(code)
        if found is None:  # a status since removed from the config: still readable
            return code
        return found.label.get(language or "en") or found.label["en"]

    def labels(self, code: str) -> Label | str:
        """The status's label in every language it has, for a text read later in another
        language (a timeline event); a status since removed: its code."""
        found = self._by_code.get(code)
        return Label(found.label) if found is not None else code

    def check_move(self, number: str, current: str, new: str) -> None:
        """Raise StatusConflict when `current` is final and `new` is another status."""
        if current != new and current in self._by_code and self._by_code[current].final:
            raise StatusConflict(f"order {number} is {current}, a final status: it cannot "
                                 f"become {new}")
