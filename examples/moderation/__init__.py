"""Declarative content moderation: a JSON graph with parallel checks, triage and a sub-workflow."""
