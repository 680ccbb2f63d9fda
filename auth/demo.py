"""`breachguard demo`: a handful of accounts and a small corpus, so `scan` shows hits at once.

Running it twice changes nothing: accounts are created once, the sample breaches are
re-imported (which replaces their entries).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sqlalchemy import select

from auth import accounts, audit
from auth.breach import importer, monitor
from auth.console.admins import set_admin
from auth.models import Account, BreachKind, utcnow
from auth.services import Services

# Demo people and passwords (printed; this is sample data, not a secret).
PEOPLE = [
    ("claire.martin@cabinet-exemple.fr", "Dr Claire Martin", "10003456789", "Soleil2019!"),
    ("julien.petit@pharmacie-exemple.fr", "Julien Petit", "20004567891", "tulipe-rouge-88"),
    ("amina.diallo@chu-exemple.fr", "Amina Diallo", "10005678912", "Correct-Horse-Battery-42"),
    ("luc.bernard@infirmier-exemple.fr", "Luc Bernard", "60006789123", "azerty123"),
    ("sofia.rossi@cabinet-exemple.fr", "Dr Sofia Rossi", "10007891234", "n0t-in-any-list-7Q"),
]

# The security console's demo administrator: /admin opens only after a second factor.
ADMIN = ("secu.admin@breachguard-exemple.fr", "Security team", "Quatre-chevaux-bleus-2026")

SAMPLES = [
    ("common-passwords.txt", BreachKind.PASSWORDS, "CommonPasswords"),
    ("sante-forum-2021-emails.txt", BreachKind.EMAILS, "SanteForum2021"),
    ("webmail-2022-combos.txt", BreachKind.COMBOS, "Webmail2022"),
]


def sample_path(name: str) -> Path:
    return Path(str(resources.files("auth") / "sample" / name))


def seed(registry: Services, *, actor: audit.Actor) -> str:
    now = utcnow()
    with registry.db.session() as session:
        existing = set(session.execute(select(Account.email)).scalars())
        for email, name, pro_id, password in PEOPLE:
            if email not in existing:
                accounts.create(
                    session,
                    email=email,
                    name=name,
                    professional_id=pro_id,
                    password=password,
                    hasher=registry.hasher,
                    actor=actor,
                    now=now,
                )
        admin_email, admin_name, admin_password = ADMIN
        if admin_email not in existing:
            accounts.create(
                session,
                email=admin_email,
                name=admin_name,
                password=admin_password,
                hasher=registry.hasher,
                actor=actor,
                now=now,
            )
        set_admin(session, email=admin_email, admin=True, actor=actor, now=now)
    acted = {"reset_accounts": 0, "mfa_accounts": 0}
    for filename, kind, breach in SAMPLES:
        with registry.db.session() as session:
            importer.Importer(session, registry.hasher, actor).run(
                importer.Source(str(sample_path(filename))), kind, breach=breach
            )
        # As `corpus import` does: that import against every account, then the policy.
        checked = monitor.after_import(registry, breach, actor=actor)
        for name in acted:
            acted[name] += checked["policy"][name]
    lines = ["Demo accounts (e-mail / password):"]
    lines += [f"  {email}  {password}" for email, _, _, password in PEOPLE]
    lines += [
        "",
        "Sign in at http://localhost:5000/login (use localhost, not 127.0.0.1: security keys",
        "and passkeys need the configured WebAuthn domain).",
        "",
        f"Security console: {ADMIN[0]} / {ADMIN[2]}",
        "is an administrator. /admin needs a second factor: sign in, add an authenticator",
        "app on /account/security, sign out, sign in again with its code, then open",
        "http://localhost:5000/admin",
        "",
        "Sample breaches imported: " + ", ".join(b for _, _, b in SAMPLES),
        f"Finding policy: {acted['reset_accounts']} account(s) must reset their password, "
        f"{acted['mfa_accounts']} must add a second factor.",
        "Try:  breachguard scan",
        "      curl http://127.0.0.1:5000/range/$(printf 'azerty123' | sha1sum | cut -c1-5)",
    ]
    return "\n".join(lines)
