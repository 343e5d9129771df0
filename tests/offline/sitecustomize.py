"""Loaded by every Python started with this folder on PYTHONPATH: no network (no_network.py)."""

import no_network

no_network.install()
