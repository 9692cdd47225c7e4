"""Fixtures for the emulator tests."""
