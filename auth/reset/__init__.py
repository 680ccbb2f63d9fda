"""Forced password resets: tokens, the set-based bulk reset, jobs, and completing a reset."""
