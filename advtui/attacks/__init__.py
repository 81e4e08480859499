"""Attacks: the one PGD loop, its objectives, representation inversion, AutoAttack, and the one resumable
driver behind robust accuracy.

The package imports nothing: a stage that runs the PGD loop does not depend on AutoAttack's adapter.
"""
