"""Thin kopf handlers: read, let the domain decide, apply the difference, write status."""
