"""Checkpoint conversion and (later) the zoo catalogue and downloads."""
