"""The fake Adyen lives in the local runtime (``tahsil_local.fake_adyen``), shared by the tests and
``tahsil dev --fake-adyen``; this name is kept so existing imports keep working."""

from tahsil_local.fake_adyen import REFUSALS, FakeAdyen, Ledger

__all__ = ["REFUSALS", "FakeAdyen", "Ledger"]
