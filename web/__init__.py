"""HTTP front-ends: the JSON API (/api/v1, OpenAPI, docs at /api/docs) and, later, the web
console. Like bot/, they use crm services and queries; crm/ imports nothing from here, and the
composition root (crm/app.py) mounts them on the one aiohttp server."""
