"""The core of the CRM: models, timeline, identity, outbox, services. Knows no channel's API."""
