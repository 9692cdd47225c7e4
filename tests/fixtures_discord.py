"""Fixtures for the discord tests."""
