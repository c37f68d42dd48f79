"""Dashboard roles: what a signed-in user may do, by role and mode, and how fresh their MFA must be.

A role is the Cognito attribute ``custom:role`` (owner, developer, viewer; set by operators, never by
the app client: ``tahsil.identity.users``). The table is docs/console.md's.
"""

from __future__ import annotations

from tahsil.kernel.principal import ALL_SCOPES, SCOPES

# Dashboard users' roles (the Cognito attribute ``custom:role``, set by operators) and what each may do.
# A user without a known role is a viewer. Only owners hold the account's own powers.
OWNER_ONLY: frozenset[str] = frozenset({"account:write", "payouts:write"})
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": ALL_SCOPES,
    "developer": ALL_SCOPES - OWNER_ONLY,
    "viewer": frozenset(s for s in SCOPES if s.endswith(":read")),
}
ROLES: tuple[str, ...] = ("owner", "developer", "viewer")
# Live powers: in live mode a role keeps these only if it is listed here (a developer builds in test mode and
# reads live), and a dashboard session uses them only within STEP_UP_SECONDS of passing MFA
# (tahsil.api.auth.STEP_UP_ROUTES, tahsil.identity.sessions.require_recent_mfa).
LIVE_POWERS: frozenset[str] = frozenset({"keys:write", "refunds:create", "payouts:write"})
ROLE_LIVE_POWERS: dict[str, frozenset[str]] = {"owner": LIVE_POWERS, "developer": frozenset(), "viewer": frozenset()}
STEP_UP_SECONDS = 15 * 60


def role_scopes(role: str, mode: str) -> frozenset[str]:
    """What a dashboard user of ``role`` may do in ``mode`` (the role table in docs/console.md)."""
    scopes = ROLE_SCOPES.get(role, ROLE_SCOPES["viewer"])
    if mode == "live":
        scopes = scopes - (LIVE_POWERS - ROLE_LIVE_POWERS.get(role, frozenset()))
    return scopes
