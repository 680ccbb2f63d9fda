"""Entry point: `flask --app app run`, `gunicorn app:app`."""

from auth.web.factory import create_app

app = create_app()
