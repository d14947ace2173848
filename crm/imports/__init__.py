"""CSV imports of orders and customers: a streaming reader (reader.py), rows checked by pure
parsers (rows.py), and the importers that write them in batches (orders.py, customers.py)."""
