"""Who is calling: API keys (create, roll, revoke, look up), request signing, dashboard sessions (Cognito
sign-in, MFA, users and roles), the ``Principal`` built from a key or a session, and the account settings
that travel with keys (API version pin, rate-limit overrides).

The gateway's own machinery, below the HTTP contract: ``tahsil.api`` authenticates requests with it and
``tahsil.console`` builds the console's features on it. May import ``tahsil.store`` and ``tahsil.kernel``;
never ``tahsil.api``, ``tahsil.console``, ``tahsil.payments`` or ``tahsil.webhooks`` (.importlinter).
"""
