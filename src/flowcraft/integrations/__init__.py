"""Optional integrations with third-party packages, each behind an import guard.

- :mod:`flowcraft.integrations.opentelemetry` — spans for runs and nodes
  (``pip install 'flowcraft-py[otel]'``).
"""
