"""The JSON API under /api/v1: API keys with scopes, pydantic bodies, an OpenAPI 3.1 document
made from them, RFC 9457 problems for every error."""
