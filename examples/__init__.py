"""Runnable Flowcraft examples (a package so `--registry examples.<name>.nodes:...` imports)."""
