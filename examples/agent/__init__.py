"""Agent loop example."""
