"""Entry point in a checkout: `flask --app app run`, `gunicorn app:app`.

The wheel leaves this module out (a top-level `app` would collide with other projects);
installed, run `breachguard serve`.
"""

from auth.web.factory import create_app

app = create_app()
