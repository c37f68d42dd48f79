"""How a credential becomes a ``Principal``: an API key's row, or a verified dashboard session.

The ``Principal`` itself is a kernel value (``tahsil.kernel.principal``); this module is the one
place that fills it in. ``tahsil.api.auth`` decides which credential a request presented and runs
the route's checks on the answer.
"""

from __future__ import annotations

from typing import Any

from tahsil.identity import cognito
from tahsil.identity.roles import role_scopes
from tahsil.kernel.errors import Unauthenticated
from tahsil.kernel.principal import LATEST_API_VERSION, Principal
from tahsil.store import dal


def of_key(item: dict[str, Any]) -> Principal:
    """The principal of an API key row (``tahsil.identity.keys``): everything it needs is on the row."""
    return Principal(
        merchant_id=item["merchant_id"],
        mode=item["mode"],
        key_id=item["key_id"],
        key_type=item["type"],
        api_version=item.get("api_version", LATEST_API_VERSION),
        merchant_name=item.get("merchant_name", ""),
        scopes=frozenset(item.get("scopes") or ()),
        rate_limits=item.get("rate_limits") or None,
        live_enabled=bool(item.get("live_enabled")),
    )


def of_session(token: str, claims: dict[str, Any], mode: str) -> Principal:
    """The principal of a verified dashboard session (``cognito.verify``'s claims) acting in ``mode``.

    The merchant's settings (API version pin, rate limits, go-live) come from its item, read strongly
    consistent; the scopes are the user's role's in that mode (``tahsil.identity.roles``)."""
    merchant_id = claims[cognito.MERCHANT_CLAIM]
    merchant = dal.get(dal.credentials_table(), f"MER#{merchant_id}", "MER", consistent=True)
    if merchant is None:
        raise Unauthenticated("this dashboard user's merchant account does not exist")
    role = cognito.role_of(claims)
    return Principal(
        merchant_id=merchant_id, mode=mode, key_id="usr_" + str(claims["sub"]).replace("-", ""), key_type="dashboard",
        api_version=merchant.get("api_version", LATEST_API_VERSION), merchant_name=merchant.get("name", ""),
        scopes=role_scopes(role, mode), rate_limits=merchant.get("rate_limits") or None,
        live_enabled=bool(merchant.get("live_enabled")), role=role, session=cognito.session_id(token),
        user=cognito.user_label(claims),
    )
