"""Optional integrations with third-party packages, each behind an import guard.

- [`flowcraft.integrations.opentelemetry`][flowcraft.integrations.opentelemetry] — spans for runs and nodes
  (``pip install 'flowcraft-py[otel]'``).
"""
