"""The reference intake service: a small stand-in for the governance centre's case intake API.

Separate FastAPI app (``create_app(settings)``), SQLite persistence, HMAC-verified and idempotent
``POST /api/v1/cases``, status that advances over time with signed callbacks to the gateway, and a
``/_control`` endpoint to make it misbehave for tests. Run: ``python -m xueliang.events.intake --help``.
"""
