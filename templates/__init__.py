"""Jinja templates for the compile targets, one folder per target (package data)."""
