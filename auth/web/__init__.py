"""HTTP surfaces: the HIBP-compatible ranges and the JSON API."""
