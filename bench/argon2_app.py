"""The baseline for bench/hook_http.py: argon2-cffi's verify behind the smallest Flask route
that reads the same JSON body, at the parameters given in the environment."""

from __future__ import annotations

import os

from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError
from flask import Flask, jsonify, request

app = Flask(__name__)
HASHER = PasswordHasher(
    time_cost=int(os.environ["ARGON2_TIME_COST"]),
    memory_cost=int(os.environ["ARGON2_MEMORY_COST"]),
    parallelism=int(os.environ["ARGON2_PARALLELISM"]),
    type=Type.ID,
)
HASH = os.environ["BENCH_ARGON2_HASH"]


@app.post("/verify")
def verify() -> object:
    body = request.get_json()
    try:
        ok = HASHER.verify(HASH, body["password"])
    except VerificationError:
        ok = False
    return jsonify({"ok": ok})


@app.get("/healthz")
def healthz() -> str:
    return "ok\n"
