"""Platform adapters: one module per platform; platform SDKs are imported only here."""
