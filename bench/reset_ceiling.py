"""The ceiling for `breachguard reset --emails FILE` on SQLite: its work, hand-written.

Run by bench/reset_bulk.py as a child process, like the CLI, on the same kind of
database: a bare interpreter with nothing but the standard library (and the address
check, auth.breach.hashing, which imports nothing else), plain sqlite3, and the least
code that does what a forced reset must do for each account of the list, in batches:

* read the file once, check and normalise every address into a private temporary
  database, resolve them there in one join against the database attached read-only
  (as the CLI does on an SQLite file), sorted by account;
* per batch, in one transaction: the UPDATE of the accounts (status, reason, epoch, MFA,
  skipping those this job already reset), their API keys and open tokens revoked, a
  Reset row each, a token each (time-first id, HMAC-SHA256 link, SHA-256 digest), a
  queued notice each, and an audit event each, hash-chained from the head row;
* close the database (its WAL checkpoint), as the CLI does at exit.

No job row, report or progress bar: the CLI's own extras. Its wall time, from the
interpreter's start, is what this work costs in the least code on one thread. The CLI makes
the next batch's tokens and audit tails on a second thread while SQLite writes the current
one (auth/reset/forced.py, Draft), so it can come out faster than this.

    python bench/reset_ceiling.py DB EMAILS BATCH SECRET_KEY
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auth.breach.hashing import normalise_email

KEY = "job:ceiling"
REASON = "password may have been exposed in a data leak"
ACTOR = "cli:bench"


def main() -> None:
    path, emails_file, batch, secret = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        db.execute(f"PRAGMA {pragma}")
    order = sqlite3.connect("file:", isolation_level=None, uri=True)
    order.execute("CREATE TABLE t (account_id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    order.execute("CREATE TABLE listed (email TEXT PRIMARY KEY) WITHOUT ROWID")

    with open(emails_file, encoding="utf-8") as fh:
        order.execute("BEGIN")
        order.executemany(
            "INSERT OR IGNORE INTO listed VALUES (?)",
            ((normalise_email(line),) for line in fh if line.strip()),
        )
        order.execute("COMMIT")
    order.execute("ATTACH DATABASE ? AS service", (f"file:{path}?mode=ro",))
    order.execute("BEGIN")
    order.execute(
        "INSERT INTO t SELECT a.id, a.email FROM listed l "
        "CROSS JOIN service.accounts a ON a.email = l.email"
    )
    order.execute("COMMIT")
    order.execute("DETACH DATABASE service")

    mac = hmac.new(secret.encode(), b"reset-token:", hashlib.sha256)
    quote = json.encoder.encode_basestring_ascii
    details = json.dumps({"findings": [], "job": None, "reason": REASON, "reset_key": KEY})
    after = 0
    while True:
        rows = order.execute(
            "SELECT account_id FROM t WHERE account_id > ? ORDER BY account_id LIMIT ?",
            (after, batch),
        ).fetchall()
        if not rows:
            break
        after = rows[-1][0]
        ids = json.dumps([r[0] for r in rows])
        db.execute("BEGIN IMMEDIATE")
        chosen = [
            r[0]
            for r in db.execute(
                "UPDATE accounts SET status = 'reset_required', reset_reason = ?, "
                "session_epoch = session_epoch + 1, mfa_required = 1, updated_at = ? "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status != 'reset_required' "
                "AND NOT EXISTS (SELECT 1 FROM resets r WHERE r.account_id = accounts.id "
                "AND r.reset_key = ?) RETURNING id",
                (REASON, stamp, ids, KEY),
            )
        ]
        chosen.sort()
        picked = json.dumps(chosen)
        db.execute(
            "INSERT INTO resets (account_id, reset_key, reason, actor, created_at) "
            "SELECT value, ?, ?, ?, ? FROM json_each(?)",
            (KEY, REASON, ACTOR, stamp, picked),
        )
        db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL "
            "AND account_id IN (SELECT value FROM json_each(?))",
            (stamp, picked),
        )
        db.execute(
            "UPDATE reset_tokens SET revoked_at = ? WHERE used_at IS NULL AND revoked_at IS NULL "
            "AND account_id IN (SELECT value FROM json_each(?))",
            (stamp, picked),
        )
        prefix = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
        fresh = secrets.token_hex(10 * len(chosen))
        tokens = []
        for i, account in enumerate(chosen):
            token_id = prefix + fresh[20 * i : 20 * i + 20]
            m = mac.copy()
            m.update(token_id.encode())
            link = token_id + base64.urlsafe_b64encode(m.digest()).rstrip(b"=").decode()
            tokens.append((token_id, account, hashlib.sha256(link.encode()).hexdigest(), stamp))
        db.executemany(
            "INSERT INTO reset_tokens (id, account_id, token_sha256, created_at) "
            "VALUES (?, ?, ?, ?)",
            tokens,
        )
        db.executemany(
            "INSERT INTO notices (account_id, kind, idempotency_key, token_id, reason, status, "
            "attempts, next_attempt_at, created_at) "
            "VALUES (?, 'reset_forced', ?, ?, ?, 'queued', 0, ?, ?)",
            [(a, f"reset:{a}:{KEY}", t, REASON, stamp, stamp) for t, a, _, _ in tokens],
        )
        seq, prev = db.execute(
            "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash"
        ).fetchone()
        at = now.isoformat()
        events = []
        for account in chosen:
            seq += 1
            target = f"account:{account}"
            tail = ",".join(map(quote, (at, ACTOR, "account:reset:forced", target, details)))
            digest = hashlib.sha256(f"[{seq},{tail},{quote(prev)}]".encode()).hexdigest()
            events.append(
                (seq, stamp, ACTOR, "account:reset:forced", target, details, prev, digest)
            )
            prev = digest
        db.executemany(
            "INSERT INTO audit_events (seq, at, actor, action, target, details, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        db.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev))
        db.execute("COMMIT")
    order.close()
    db.close()


if __name__ == "__main__":
    main()
