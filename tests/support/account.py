"""The account profile test values (payout details, a zero-decimal currency) the console tests share."""

from __future__ import annotations

PROFILE = {"legal_name": "Basra Private School LLC", "mcc": "8220", "support_email": "support@basra-school.example",
           "support_phone": "+9647701234567", "support_url": "https://basra-school.example/help"}


IQD = {"currency": "IQD", "account_holder_name": "Basra Private School LLC", "bank_name": "National Bank of Iraq",
       "iban": "IQ98 NBIQ 8501 2345 6789 012"}
