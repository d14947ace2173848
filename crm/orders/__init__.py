"""Orders: the service (service.py), its reads (queries.py), statuses (statuses.py), what
customers read (texts.py), the lookup limit (lookups.py) and how orders follow a customer
(data.py)."""
