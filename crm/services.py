"""The services of the core, built once by the composition root and handed to every part."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crm.apikeys import ApiKeys
from crm.campaigns.data import RecipientData
from crm.campaigns.engine import CampaignEngine
from crm.campaigns.results import Results
from crm.campaigns.segments import Segments
from crm.campaigns.service import Campaigns
from crm.clock import Clock, utcnow
from crm.config import Settings
from crm.consent import Consents
from crm.conversations import Conversations
from crm.customers import CustomerData, Customers
from crm.dispatcher import Dispatcher
from crm.edits import Edits
from crm.events import EventBus
from crm.files import FileLinks, FileStore
from crm.links import Signer
from crm.managers import Managers
from crm.orders.data import OrderData
from crm.orders.service import Orders
from crm.outbox import OutboxService
from crm.ports import Inbox
from crm.queries import Queries
from crm.replies import CannedReplies
from crm.reports.facts import FactRecords
from crm.reports.reports import Reports
from crm.staff import Staff
from crm.tasks import TaskRecords
from crm.timeline import Timeline
from crm.verification import AddressChecks

if TYPE_CHECKING:
    from crm.live import LiveFeed


@dataclass
class Core:
    settings: Settings
    bus: EventBus
    timeline: Timeline
    outbox: OutboxService
    dispatcher: Dispatcher
    conversations: Conversations
    customers: Customers
    managers: Managers
    consent: Consents
    # Where adapters hand what arrives; the composition root puts the customer dialogue here.
    inbox: Inbox
    queries: Queries
    apikeys: ApiKeys
    orders: Orders
    # Every file of every channel (crm/files.py), and signed links to them (`/f/`).
    files: FileStore
    replies: CannedReplies
    edits: Edits
    links: FileLinks
    # The key of every public link (/f/, /o/): `[http] link_secret`, or one kept in the database.
    signer: Signer
    # Staff sign-in and sessions of the web console (crm/staff.py).
    staff: Staff
    # Saved filters over customers, and their previews (crm/campaigns/segments.py).
    segments: Segments
    # Broadcasts: create, preview, test, schedule, …; the engine the scheduler ticks.
    campaigns: Campaigns
    # Every report by name (crm/reports): the API, the console and the CLI read the same.
    reports: Reports
    # Codes that prove an address a customer gave is theirs before it is linked (web chat).
    checks: AddressChecks
    clock: Clock = field(default=utcnow)
    # Committed events for what stays open (console pages, web chat visitors): set by the
    # composition root when one of them is on.
    live: LiveFeed | None = None

    @classmethod
    def build(cls, settings: Settings, clock: Clock = utcnow) -> Core:
        bus = EventBus()
        outbox = OutboxService(bus, clock)
        consent = Consents(bus, settings.consent, clock)
        timeline = Timeline(settings, bus, clock)
        # Every table with a customer's data besides the customers module's own: merge, export
        # and forget cover them (tests/crm/test_customer_data.py fails when one is missing).
        related: list[CustomerData] = [TaskRecords(), consent, OrderData(), FactRecords(),
                                       RecipientData()]
        # Several processes share a PostgreSQL database: each channel is sent by one of them.
        dispatcher = Dispatcher(outbox, bus, settings.outbox, lock_url=None
                                if settings.database.is_sqlite else settings.database.url)
        signer = Signer(settings.http.link_secret, clock)
        links = FileLinks(settings.http.public_url, signer, settings.files.link_hours)
        conversations = Conversations(bus, outbox, clock, consent, links)
        customers = Customers(bus, settings.sms.default_region, clock, related)
        queries = Queries(consent)
        managers = Managers()
        files = FileStore(settings.files.dir, settings.files.max_bytes)
        reports = Reports(settings, clock)
        segments = Segments(settings.consent, reports)
        engine = CampaignEngine(settings, bus, segments, signer, lambda: dispatcher.channels,
                                dispatcher.rate, clock)
        results = Results(bus, consent, signer, settings.campaigns, clock)
        results.install()  # replies, opt-outs and deliveries count from the first event on
        checks = AddressChecks(bus, outbox, customers, consent, signer,
                               settings.bot.company_name, clock)
        customers.related.append(checks)
        return cls(
            settings=settings,
            bus=bus,
            timeline=timeline,
            outbox=outbox,
            dispatcher=dispatcher,
            conversations=conversations,
            customers=customers,
            managers=managers,
            consent=consent,
            inbox=timeline,
            queries=queries,
            apikeys=ApiKeys(clock),
            orders=Orders(settings, bus, conversations, consent, customers, queries.orders,
                          signer, clock),
            signer=signer,
            files=files,
            replies=CannedReplies(settings.bot.company_name, settings.bot.default_language),
            edits=Edits(bus, outbox, dispatcher, clock),
            links=links,
            staff=Staff(settings.console, settings.http.public_url, signer, managers, bus,
                        clock),
            segments=segments,
            campaigns=Campaigns(settings, bus, outbox, consent, segments, engine, results,
                                files, clock),
            reports=reports,
            checks=checks,
            clock=clock,
        )
