"""Parallel batch example."""
