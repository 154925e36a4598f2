"""Integrations with other evaluation tools (imported on demand; each needs its tool installed)."""
