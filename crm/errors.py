"""The errors of the core. A user sees the message; the log holds the detail.

An error a manager may meet in the chat carries its `phrase` (crm/i18n.py): the chat says it in
the manager's language (`in_language`), while `str(error)` stays the English sentence the log,
the command line and the API's problem bodies use.
"""

from __future__ import annotations

from crm.i18n import Phrase


class CrmError(Exception):
    """Base of every error the CRM raises on purpose."""

    phrase: Phrase | None = None

    def __init__(self, message: str | Phrase = "", *args: object) -> None:
        if isinstance(message, Phrase):
            self.phrase = message
            message = message.render()
        super().__init__(message, *args)

    def in_language(self, language: str | None) -> str:
        """The sentence for a reader of `language` (English when it has no phrase)."""
        return self.phrase.render(language) if self.phrase is not None else str(self)


class ConfigError(CrmError):
    """The config file is missing, unreadable or invalid; the message names file, line and key."""


class InvalidAddress(CrmError):
    """An email address or phone number that cannot be used, with the reason."""


class NotFound(CrmError):
    """A customer, manager or message that does not exist."""


class SchemaOutdated(CrmError):
    """The database schema is older than the code; the message says what to run."""


class SendRejected(CrmError):
    """A message that cannot be queued as it is (too long, no address on that channel, …)."""


class Conflict(CrmError):
    """What was asked clashes with what is stored (an address of another customer, a key reused
    for a different request)."""


class AddressTaken(Conflict):
    """An address that already leads to another customer; merge the two instead."""

    def __init__(self, message: str | Phrase, customer_id: int) -> None:
        super().__init__(message)
        self.customer_id = customer_id


class Erased(Conflict):
    """The customer's personal data was erased (`crm customers forget`): nothing new is kept."""


class InvalidField(CrmError):
    """A field of something to be stored (a segment, a campaign) that cannot be used as given;
    `field` names where it is (`filter.any[1].tag`), `reason` says what to write instead."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
