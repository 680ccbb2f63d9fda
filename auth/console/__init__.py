"""The security console: figures from the database (figures), SVG charts drawn from them
(charts, pure), the findings table and an account's page (findings, accounts), who may
open it (admins), what it does to findings (actions), and its pages (views)."""
