"""The security console's read side: figures from the database (stats), SVG charts drawn
from them (charts, pure), the findings table and an account's page (findings, accounts)."""
