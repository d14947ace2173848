"""Request and response bodies of the API (pydantic); the OpenAPI document is made from them."""
