"""Forced password resets: the set-based batch (forced), resumable jobs (job) over their
sources (sources), reset links (tokens), and completing a reset (complete)."""
