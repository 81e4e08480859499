"""Reusable widgets of the advtui terminal app."""
