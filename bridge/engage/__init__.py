"""Async client for the Engage Smarter Conversations API, and its data models."""
