"""API version pins for an account."""

from __future__ import annotations


def pin(merchant_id: str, version: str) -> None:
    """Move a merchant's pin directly in the table (the API only moves it forward)."""
    from tahsil.identity import account
    from tahsil.store import dal

    dal.update(dal.credentials_table(), f"MER#{merchant_id}", "MER", "SET api_version = :v", vals=dal.values(v=version))
    account.copy_to_keys(merchant_id, "api_version", version)
