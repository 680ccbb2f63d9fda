"""HTTP: the app factory and server, the pages, the JSON API and the login hook, the
HIBP-compatible ranges; API keys on routes (keys), the session cookie (session)."""
