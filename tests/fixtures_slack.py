"""Fixtures for the slack tests."""
