"""Webhooks: endpoints, fan-out of outbox events, signed delivery attempts and retries, the events
API, the SSRF guard, and the per-endpoint delivery log.

May import ``tahsil.store`` and ``tahsil.kernel``; never ``tahsil.api``, ``tahsil.console`` or
``tahsil.payments`` (it reads events, not payments).
"""
