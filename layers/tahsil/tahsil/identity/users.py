"""Operators' dashboard users (``tahsil users create`` and ``set-role``): Cognito admin calls, never the app client.

The user pool's ``custom:merchant_id`` and ``custom:role`` attributes are written here only; the app
client cannot write them, so a user can neither move to another merchant nor raise their own role.
"""

from __future__ import annotations

from typing import Any

from tahsil.identity import cognito
from tahsil.identity.cognito import MERCHANT_CLAIM, ROLE_CLAIM
from tahsil.identity.roles import ROLES
from tahsil.kernel.errors import InvalidRequest


def create_user(email: str, merchant_id: str, *, temporary_password: str, permanent: bool = False,
                role: str = "owner") -> dict[str, Any]:
    """A dashboard user for ``merchant_id`` with ``role`` (owner, developer or viewer);
    with ``permanent`` the password needs no change at first sign-in."""
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", param="role")
    pool_id, _ = cognito.pool()
    client = cognito.client()
    client.admin_create_user(
        UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS", TemporaryPassword=temporary_password,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
                        {"Name": MERCHANT_CLAIM, "Value": merchant_id}, {"Name": ROLE_CLAIM, "Value": role}])
    if permanent:
        client.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=temporary_password, Permanent=True)
    return {"username": email, "merchant_id": merchant_id, "role": role, "password_is_temporary": not permanent}


def set_role(email: str, role: str, *, merchant_id: str | None = None) -> dict[str, Any]:
    """An operator changes a dashboard user's role (``tahsil users set-role``). The app client cannot write
    ``custom:role``, so neither can users: raising one's own role takes an operator. The new role applies within
    a minute (the session check reads ``GetUser``), and the user's sessions are signed out so none keeps a
    token minted under the old role. ``merchant_id``, when given, must be the user's (a guard against typos)."""
    from botocore.exceptions import ClientError

    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", param="role")
    pool_id, _ = cognito.pool()
    client = cognito.client()
    try:
        user = client.admin_get_user(UserPoolId=pool_id, Username=email)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "UserNotFoundException":
            raise InvalidRequest(f"no dashboard user {email}", param="email") from None
        raise
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes") or []}
    if merchant_id and attributes.get(MERCHANT_CLAIM) != merchant_id:
        raise InvalidRequest(f"{email} is not a user of {merchant_id}", param="merchant_id")
    before = attributes.get(ROLE_CLAIM) if attributes.get(ROLE_CLAIM) in ROLES else "viewer"
    client.admin_update_user_attributes(UserPoolId=pool_id, Username=email,
                                        UserAttributes=[{"Name": ROLE_CLAIM, "Value": role}])
    client.admin_user_global_sign_out(UserPoolId=pool_id, Username=email)
    return {"username": email, "merchant_id": attributes.get(MERCHANT_CLAIM), "role": role, "previous_role": before,
            "signed_out": True}
