"""Helpers shared by the tests (on the test path only)."""
