"""Retrieval pipeline example."""
