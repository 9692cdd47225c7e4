"""The emulator's routers, one per resource of the contract."""
