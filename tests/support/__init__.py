"""Helpers shared by tests (not tests themselves): test modules import these, never each other.

Fixtures live in conftest.py files; plain functions and constants live here."""
