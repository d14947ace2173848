"""Settings: a TOML file, `${ENV}` references for secrets, errors that name file, line and key."""

from __future__ import annotations

import codecs
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from crm.errors import ConfigError
from crm.settings_campaigns import CampaignsSettings
from crm.settings_orders import CustomersSettings, OrdersSettings
from crm.types import WebhookEvent

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# [email] fallback_charsets: what undeclared 8-bit bytes of a mail are read as, after the
# charsets the mail declares and UTF-8.
DEFAULT_FALLBACK_CHARSETS = ("cp1251", "koi8-r", "cp1252")
_ASCII = bytes(range(0x20, 0x7F))


class _Missing(ValueError):
    """A key that is required given the others; the message names it."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}")
        self.key = key


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = "sqlite://./data/crm.sqlite3"
    # SQLite only: apply pending migrations on `crm run`. PostgreSQL always refuses an old schema.
    auto_upgrade: bool = True
    pool_size: int = Field(default=10, ge=1, le=200)
    # SQLite only. "normal": every commit survives a crash or kill of the service (WAL mode); a
    # power cut or OS crash may undo the last moments. "full": survives those too, at about half
    # the write rate.
    sqlite_synchronous: Literal["normal", "full"] = "normal"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite:")


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # Signs the public links we hand out (crm/links.py: files /f/, order pages /o/): at least 32
    # characters, from the environment. Empty: a key generated once and kept in the database.
    link_secret: str = ""

    @field_validator("link_secret")
    @classmethod
    def _link_secret(cls, v: str) -> str:
        if v and len(v) < 32:
            raise ValueError("at least 32 characters are required (e.g. `openssl rand -hex 32`),"
                             " or empty to let chatcrm generate one; keep it in the environment:"
                             " link_secret = \"${CRM_LINK_SECRET}\"")
        return v


class FilesSettings(_Section):
    """Every file customers and managers send, on any channel (crm/files.py)."""

    dir: str = "./data/files"
    # Larger files are not kept: the message is, with the file's name and size and a note.
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=0)
    # How long a download link we send (an SMS without MMS, Twilio's MediaUrl) stays valid.
    link_hours: float = Field(default=72.0, gt=0, le=24 * 365)


class RoutingSettings(_Section):
    strategy: Literal["round_robin", "least_busy"] = "round_robin"
    sticky: bool = True
    first_response_minutes: int = Field(default=15, ge=1)
    # A closed conversation is reopened by a message within this window; later, a new one opens.
    reopen_window_hours: int = Field(default=168, ge=0)
    # Seconds between safety-net passes over the queue (it also drains at once when a manager
    # comes online or closes a conversation).
    queue_check_seconds: float = Field(default=60.0, ge=1)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SlaSettings(_Section):
    """Business hours and response deadlines (crm/sla.py). No `hours`: open around the clock."""

    timezone: str = "UTC"
    hours: dict[str, str] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)
    next_response_minutes: int = Field(default=60, ge=1)
    remind_before_minutes: int = Field(default=5, ge=0)
    reassign_on_miss: bool = True
    after_hours_reply: bool = False
    after_hours_reply_period_hours: float = Field(default=24.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name such as UTC or Europe/Berlin") from None
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, str]) -> dict[str, str]:
        from crm.sla import parse_ranges

        for day, ranges in v.items():
            if day not in _WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday: use {', '.join(_WEEKDAYS)}")
            parse_ranges(ranges)  # raises ValueError with the reason
        if v and not any(parse_ranges(r) for r in v.values()):
            raise ValueError("closed on every day: give at least one range, or remove "
                             "[sla.hours] to count the team as open around the clock")
        return v


class FollowupSettings(_Section):
    """Automatic follow-ups, the rating survey and manager reminders (crm/followups.py)."""

    silence_hours: float = Field(default=0.0, ge=0)
    max_count: int = Field(default=1, ge=0, le=20)
    text: str = ""
    late_limit_hours: float = Field(default=24.0, ge=0)
    survey: bool = False
    survey_delay_minutes: float = Field(default=60.0, ge=0)
    survey_answer_hours: float = Field(default=72.0, gt=0)
    survey_late_limit_hours: float = Field(default=24.0, ge=0)
    reminder_escalate_minutes: float = Field(default=60.0, ge=0)


class SchedulerSettings(_Section):
    tick_seconds: float = Field(default=30.0, ge=0.1, le=3600)
    lock_id: int = 72_410_001
    task_max_attempts: int = Field(default=5, ge=1, le=100)


class OutboxSettings(_Section):
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=3600.0, gt=0)
    lease_seconds: float = Field(default=60.0, ge=5)
    # Per channel and per lane (live, notify, bulk each have this many; crm/dispatcher.py).
    max_in_flight: int = Field(default=50, ge=1, le=1000)
    shutdown_grace: float = Field(default=5.0, ge=0, le=120)
    # PostgreSQL, several processes: how often one that stands by for a channel tries to take
    # over its sending, and the one sending checks it still may (crm/dispatcher.py).
    standby_seconds: float = Field(default=2.0, gt=0, le=60)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"


class TelegramSettings(_Section):
    token: str = ""
    api_base_url: str = "https://api.telegram.org"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_secret: str = ""
    managers_chat_id: int | None = None
    # The language of what the bot writes to the whole team (notices in the group and the
    # customers' topics): "en" or "ru"; empty: [bot] default_language. Each manager's own
    # answers follow their language (`crm managers add … --language`, else their Telegram one).
    managers_language: Literal["en", "ru", ""] = ""
    poll_timeout: int = Field(default=30, ge=0, le=50)
    # Where our HTTP server takes Telegram's webhook calls (mode = "webhook").
    webhook_path: str = Field(default="/telegram/webhook", pattern=r"^/[A-Za-z0-9_/.-]*$")
    # Paid broadcasts (opt-in): campaign messages carry `allow_paid_broadcast` and go at up to
    # `paid_broadcast_rate` a second instead of 30, for 0.1 Telegram Stars each (the bot's
    # balance pays). Replies and notices stay within the free 30 a second.
    paid_broadcast: bool = False
    paid_broadcast_rate: float = Field(default=1000.0, gt=0, le=1000)

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> TelegramSettings:
        if self.enabled and self.mode == "webhook" and not self.webhook_secret:
            raise _Missing("webhook_secret", "required when mode = \"webhook\"")
        return self


class EmailSettings(_Section):
    imap_host: str = ""
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    imap_username: str = ""
    imap_password: str = ""
    imap_folder: str = "INBOX"
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["ssl", "starttls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    # A PEM bundle of CA certificates trusted in addition to the system's, for servers with a
    # certificate from their own CA (both IMAP and SMTP); empty: the system's trust only.
    tls_ca_file: str = ""
    from_address: str = ""
    from_name: str = ""
    # Re-check the mailbox this often even with IDLE (seconds): a safety net, and for servers
    # without IDLE.
    poll_interval: float = Field(default=60.0, gt=0)
    # On first start, import mail of the last N days (0: only mail that arrives from now on).
    import_days: int = Field(default=0, ge=0)
    # Deprecated: files of every channel are kept as [files] says. Still honoured when set:
    # a mail's files go to this folder, and this limit applies to them.
    attachments_dir: str = ""
    max_attachment_bytes: int | None = Field(default=None, ge=0)
    # At most this many automatic mails (acknowledgements, auto-replies) per address per hour.
    auto_reply_cap_per_hour: int = Field(default=3, ge=0)
    # At most this many mails per second through SMTP (providers throttle or block bursts).
    smtp_rate_per_second: float = Field(default=10.0, gt=0)
    # The List-Unsubscribe mailto address: a mail to it stops email marketing for its sender.
    # Empty: from_address with "+unsubscribe" (support+unsubscribe@example.com), which most
    # servers deliver to the same mailbox.
    unsubscribe_address: str = ""

    # Undeclared 8-bit bytes (raw 8-bit headers, a part without a usable charset) are read in the
    # charsets the mail declares, then UTF-8, then these, in this order.
    fallback_charsets: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FALLBACK_CHARSETS))

    @field_validator("fallback_charsets")
    @classmethod
    def _charsets(cls, v: list[str]) -> list[str]:
        for name in v:
            try:
                codec = codecs.lookup(name.strip())
            except LookupError:
                raise ValueError(f"{name!r} is not a charset name Python knows (such as "
                                 "cp1251, koi8-r, cp1252 or iso-8859-2)") from None
            try:
                ascii_ok = _ASCII.decode(codec.name) == _ASCII.decode("ascii")
            except UnicodeDecodeError:
                ascii_ok = False
            if not ascii_ok:
                raise ValueError(f"{name!r} does not read ASCII as ASCII (UTF-16, UTF-7, "
                                 "EBCDIC…): it cannot be what 8-bit mail bytes are in")
        return [name.strip() for name in v]

    @property
    def unsubscribe_mailbox(self) -> str | None:
        if self.unsubscribe_address:
            return self.unsubscribe_address
        local, at, domain = self.from_address.partition("@")
        return f"{local}+unsubscribe@{domain}" if at else None

    @property
    def enabled(self) -> bool:
        return bool(self.imap_host and self.smtp_host and self.from_address)

    @model_validator(mode="after")
    def _complete_or_off(self) -> EmailSettings:
        # Half a mailbox is a mistake, not "off": say which keys are missing.
        if self.imap_host or self.smtp_host:
            for key in ("imap_host", "imap_username", "smtp_host", "from_address"):
                if not getattr(self, key):
                    raise _Missing(key, "required when the email channel is configured "
                                        "(imap_host or smtp_host is set)")
        if self.tls_ca_file and not os.path.isfile(self.tls_ca_file):
            raise _Missing("tls_ca_file", f"no such file: {self.tls_ca_file!r} (a PEM bundle "
                                          "of CA certificates, or empty for the system's "
                                          "trust only)")
        return self


class KannelSettings(_Section):
    sendsms_url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    username: str = ""
    password: str = ""
    sender: str = ""


class TwilioSettings(_Section):
    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""
    messaging_service_sid: str = ""
    api_base_url: str = "https://api.twilio.com"
    # Send a manager's file as MMS where Twilio carries MMS (numbers in the US and Canada, at
    # most 5 MB); elsewhere, or when false, the SMS carries a download link instead.
    mms: bool = True


class SmsSettings(_Section):
    provider: Literal["kannel", "twilio", ""] = ""
    default_region: str = "US"
    rate_per_second: float = Field(default=10.0, gt=0)
    inbound_token: str = ""
    max_segments: int = Field(default=6, ge=1, le=255)
    kannel: KannelSettings = KannelSettings()
    twilio: TwilioSettings = TwilioSettings()

    @model_validator(mode="after")
    def _provider_settings(self) -> SmsSettings:
        if self.provider == "kannel" and not self.kannel.sendsms_url:
            raise _Missing("kannel.sendsms_url", "required when provider = \"kannel\"")
        if self.provider == "twilio" and self.twilio.account_sid and not (
                self.twilio.from_number or self.twilio.messaging_service_sid):
            raise _Missing("twilio.from_number",
                           "required (or messaging_service_sid) when provider = \"twilio\"")
        return self

    @property
    def enabled(self) -> bool:
        if self.provider == "kannel":
            return bool(self.kannel.username and self.kannel.password)
        if self.provider == "twilio":
            return bool(self.twilio.account_sid and self.twilio.auth_token)
        return False


class BotSettings(_Section):
    default_language: Literal["en", "ru"] = "en"
    company_name: str = "our team"
    # Channels whose customers get one "we have your message" note per unanswered conversation.
    acknowledge: list[Literal["telegram", "email", "sms", "webchat"]] = [
        "telegram", "email", "webchat"]


class ConsentSettings(_Section):
    """What holds before a customer has said anything (crm/consent.py)."""

    # "granted": customers get marketing until they opt out; "denied": only once they opted in.
    marketing_default: Literal["granted", "denied"] = "granted"
    # Order status updates and other notices about the customer's own business.
    notifications_default: Literal["granted", "denied"] = "granted"


class ApiSettings(_Section):
    """The HTTP API under /api/v1 (web/api); keys come from `crm apikeys create`."""

    enabled: bool = True
    # Per API key and process: a steady rate and the burst allowed on top of it.
    rate_per_minute: float = Field(default=600.0, gt=0)
    burst: int = Field(default=60, ge=1)
    # Larger request bodies get 413.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=25 * 1024 * 1024)
    default_page_size: int = Field(default=50, ge=1, le=500)
    max_page_size: int = Field(default=200, ge=1, le=1000)
    # The interactive documentation at /api/docs (the OpenAPI document is always served).
    docs: bool = True
    # Webhooks: attempts before an event is given up (with the outbox's backoff, capped at
    # [outbox] backoff_max: the default keeps retrying for about a day), and the timeout of one.
    webhook_max_attempts: int = Field(default=40, ge=1, le=1000)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class ConsoleSettings(_Section):
    """The web console under /console (web/console): staff sessions and sign-in."""

    enabled: bool = True
    # A session unused this long is over (the staff member signs in again).
    session_idle_minutes: int = Field(default=480, ge=5, le=60 * 24 * 30)
    # And any session, used or not, after this long.
    session_max_hours: float = Field(default=24 * 14, gt=0, le=24 * 365)
    # Failed sign-ins with one email within the window lock that email out for lockout_minutes
    # (a client address gets four times as many, across emails).
    sign_in_max_failures: int = Field(default=5, ge=1, le=100)
    sign_in_window_minutes: float = Field(default=15.0, gt=0)
    sign_in_lockout_minutes: float = Field(default=15.0, gt=0)
    # The link `crm run` logs while there is no admin: how long it stays valid.
    first_admin_link_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # Conversations on one page of the inbox.
    page_size: int = Field(default=50, ge=5, le=500)


_ORIGIN = re.compile(r"^https?://[a-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9a-f:.]+\](:\d{1,5})?$")


def origin_of(url: str) -> str:
    """`https://Shop.example:443/path` -> `https://shop.example:443`: what a browser sends as
    Origin for a page at that URL (scheme and host lower-cased, the port as written)."""
    scheme, _, rest = url.strip().partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return f"{scheme.lower()}://{host.lower()}"


class WebchatSettings(_Section):
    """The chat widget on the shop's own site (channels/webchat)."""

    enabled: bool = False
    # Pages of these origins may use the widget (exactly `scheme://host[:port]`, as browsers
    # send Origin); [http] public_url's own origin always may (the demo page).
    allowed_origins: list[str] = Field(default_factory=list)
    # A visitor's token (kept by their browser) lasts this long after their last visit.
    visitor_days: float = Field(default=90.0, gt=0, le=3650)
    # Requests per minute per visitor and per client address (per process), with bursts.
    visitor_rate_per_minute: float = Field(default=30.0, gt=0)
    visitor_burst: int = Field(default=10, ge=1)
    ip_rate_per_minute: float = Field(default=300.0, gt=0)
    ip_burst: int = Field(default=60, ge=1)
    # Open event streams per visitor (browser tabs) and per client address, per process.
    streams_per_visitor: int = Field(default=5, ge=1, le=100)
    streams_per_ip: int = Field(default=200, ge=1)
    max_text_length: int = Field(default=4000, ge=1, le=20_000)
    history_page: int = Field(default=50, ge=5, le=500)
    # The code that links an email or a phone number: valid this long, this many tries, and at
    # most codes_per_hour sent for one visitor.
    code_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    code_attempts: int = Field(default=5, ge=1, le=20)
    codes_per_hour: int = Field(default=5, ge=1, le=100)
    # Messages a second the channel hands to visitors (the outbox's limit for it).
    send_per_second: float = Field(default=500.0, gt=0)
    # Seconds between keep-alive comments on an idle event stream (proxies close silent ones).
    ping_seconds: float = Field(default=20.0, gt=0, le=300)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        bad = [o for o in v if not _ORIGIN.match(o)]
        if bad:
            raise ValueError(
                f"not an origin: {', '.join(repr(o) for o in bad)}; write each exactly as "
                "browsers send it: scheme://host or scheme://host:port, lower case, no path "
                "and no slash at the end (\"https://shop.example.com\")")
        return v


class WebhookSettings(_Section):
    """One receiver of events (`[[webhooks]]`), signed with its own secret."""

    url: str = Field(pattern=r"^https?://[^\s]+$")
    secret: str = ""
    # Event names (see crm/types.py WebhookEvent), or "*" for every event, also future ones.
    events: list[str] = Field(min_length=1)
    # POSTs per second to this receiver at most.
    rate_per_second: float = Field(default=10.0, gt=0, le=1000)

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        if len(v) < 16:
            raise ValueError("at least 16 characters are required (e.g. `openssl rand -hex 32`);"
                             " keep it in the environment: secret = \"${WEBHOOK_SECRET}\"")
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        known = {e.value for e in WebhookEvent}
        unknown = [e for e in v if e != "*" and e not in known]
        if unknown:
            raise ValueError(f"unknown event(s) {', '.join(unknown)}: use "
                             f"{', '.join(sorted(known))} or \"*\"")
        return v

    def wants(self, event: WebhookEvent) -> bool:
        return "*" in self.events or event.value in self.events


class ReportsSettings(_Section):
    """Reports (crm/reports) and the weekly digest to the admins."""

    # Days, months and busy hours are counted in this zone; empty: [sla] timezone.
    timezone: str = ""
    # Revenue is summed in this currency (ISO code); empty: the one most of the latest 1,000
    # orders are in.
    currency: str = Field(default="", pattern=r"^([A-Za-z]{3})?$")
    # Orders in these statuses are neither orders nor revenue in the reports.
    excluded_statuses: list[str] = Field(default_factory=lambda: ["cancelled"])
    # The weekly digest: the overview of the last 7 days, as a chart and a summary, to every
    # admin's private chat with the bot.
    digest: bool = False
    digest_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    digest_time: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    digest_timezone: str = ""  # empty: the reports' zone

    @field_validator("timezone", "digest_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if not v:
            return v
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name such as UTC or Europe/Berlin") from None
        return v


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    http: HttpSettings = HttpSettings()
    files: FilesSettings = FilesSettings()
    routing: RoutingSettings = RoutingSettings()
    sla: SlaSettings = SlaSettings()
    followups: FollowupSettings = FollowupSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    outbox: OutboxSettings = OutboxSettings()
    logging: LoggingSettings = LoggingSettings()
    bot: BotSettings = BotSettings()
    consent: ConsentSettings = ConsentSettings()
    telegram: TelegramSettings = TelegramSettings()
    email: EmailSettings = EmailSettings()
    sms: SmsSettings = SmsSettings()
    api: ApiSettings = ApiSettings()
    console: ConsoleSettings = ConsoleSettings()
    webchat: WebchatSettings = WebchatSettings()
    orders: OrdersSettings = OrdersSettings()
    customers: CustomersSettings = CustomersSettings()
    reports: ReportsSettings = ReportsSettings()
    campaigns: CampaignsSettings = CampaignsSettings()
    webhooks: list[WebhookSettings] = Field(default_factory=list)

    @field_validator("webhooks")
    @classmethod
    def _one_url_each(cls, v: list[WebhookSettings]) -> list[WebhookSettings]:
        urls = [w.url for w in v]
        twice = sorted({u for u in urls if urls.count(u) > 1})
        if twice:
            raise ValueError(f"each url once: {', '.join(twice)} appears more than once (list "
                             "all its events in one [[webhooks]] entry)")
        return v

    @property
    def team_language(self) -> str:
        """The language of notices to the whole team."""
        return self.telegram.managers_language or self.bot.default_language

    @field_validator("sms")
    @classmethod
    def _region(cls, v: SmsSettings) -> SmsSettings:
        if len(v.default_region) != 2 or not v.default_region.isalpha():
            raise ValueError("default_region must be a two-letter country code such as US or DE")
        return v


def expand_env(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string; an unset VAR becomes ''."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    return value


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config file; a problem raises ConfigError naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (copy config.example.toml)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_settings(expand_env(raw, environ), source=str(path), text=text)


def parse_settings(raw: dict[str, Any], source: str = "<config>", text: str = "") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        problems = [_describe(err, source, text) for err in e.errors()]
        raise ConfigError("\n".join(problems)) from None


def _describe(err: Any, source: str, text: str) -> str:
    loc = [str(p) for p in err["loc"]]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _Missing):  # a model validator naming a key that must be set
        loc = [*loc, *cause.key.split(".")]
        message = str(cause).split(": ", 1)[1]
        at = _at(source, _find_line(text, [*loc[:-1], "__section__"]))
        return f"{at}: [{'.'.join(loc[:-1])}] {loc[-1]}: {message}"
    section, key = ".".join(loc[:-1]), loc[-1] if loc else ""
    at = _at(source, _find_line(text, loc))
    if err["type"] == "extra_forbidden":
        if not section:
            return f"{at}: [{key}]: unknown section (check the spelling against " \
                   "config.example.toml)"
        return f"{at}: [{section}] {key}: unknown key (check the spelling against " \
               "config.example.toml)"
    where = f"[{section}] {key}" if section else key
    if err["type"] == "missing":
        return f"{at}: {where}: required key is missing"
    got = err.get("input")
    secret = any(word in key for word in ("password", "token", "secret", "sid"))
    shown = "" if secret or isinstance(got, dict | list) else f" (got {got!r})"
    return f"{at}: {where}: {err['msg']}{shown}"


def _at(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line else source


def _find_line(text: str, loc: list[str]) -> int | None:
    """Best effort: the line of `key =` inside `[section]`, or of the `[section]` header."""
    if not text or not loc:
        return None
    want_section, key = ".".join(loc[:-1]), loc[-1]
    section = ""
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        header = re.fullmatch(r"\[\s*([^\]]+?)\s*\]", line)
        if header:
            section = header.group(1)
            if (not want_section and section == key) or (
                    key == "__section__" and section == want_section):
                return number
            continue
        if section == want_section and re.match(rf"{re.escape(key)}\s*=", line):
            return number
    return None
