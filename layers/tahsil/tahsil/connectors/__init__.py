"""Connectors: the processors a payment is handed to, behind one interface (``base.Connector``).

- ``simulator``: the seed's test cards, answered in process; the only connector test mode uses.
- ``adyen``: Adyen's Checkout API through Adyen's Python library; modifications settle by notification.
- ``settings``: which connector a merchant uses in live mode, its non-secret settings (DynamoDB)
  and its credentials (one Secrets Manager secret per merchant connector, customer-managed KMS key).

May import ``tahsil.store`` and ``tahsil.kernel`` only; ``tahsil.payments`` calls it.
"""
