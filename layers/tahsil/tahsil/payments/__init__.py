"""Payments: authorize, sale, capture, void, refund, transactions, payment intents, hosted checkout,
cards and the simulated issuer, fraud rules, authorization and intent expiry.

May import ``tahsil.store`` and ``tahsil.kernel``; never ``tahsil.api``, ``tahsil.console`` or
``tahsil.webhooks`` (events leave through the outbox rows the kernel builds).
"""
