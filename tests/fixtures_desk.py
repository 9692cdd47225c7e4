"""Fixtures for the desk tests."""
