"""Tahsil's domain layer: money, cards, fraud rules, payments, and their data access.

Shipped to Lambda as one layer (``layers/tahsil``) and installed locally with
``pip install -e .``, so handlers import it the same way in both places.
"""

__version__ = "0.1.0"
