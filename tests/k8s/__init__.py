"""API-level test harness: an in-process Kubernetes API double built on kmock (see emulator.py)."""
