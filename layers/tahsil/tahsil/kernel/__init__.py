"""The kernel: the language every context speaks, with no I/O.

Errors (and their HTTP statuses), ids, the clock, settings, money, API versions, the
``Principal`` and scope names, the outbox event row, the shared model bases, the logger and
metrics. Imports nothing of Tahsil outside ``tahsil.kernel``.
"""
