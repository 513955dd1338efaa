"""Sequential pipeline example."""
