"""The store: DynamoDB access (``dal``), the card and secret vault (``crypto``), AWS clients, and the
credential guards that every credential write passes.

May import ``tahsil.kernel`` only. Nothing here knows about HTTP, payments or webhooks.
"""
