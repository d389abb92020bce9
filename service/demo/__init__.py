"""The demo: a seeded fraud-model population driven through the SDK."""
