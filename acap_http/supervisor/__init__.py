"""Keeps dockerd running with the current settings and files: the settings
snapshot and checks, the command line, the process runner, the readiness
probe, and the state machine that ties them together (``core``)."""
