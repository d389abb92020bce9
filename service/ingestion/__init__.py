"""Ingestion of outcome events: decoding, checking against experiments, appending."""
