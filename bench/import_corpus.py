"""`breachguard corpus import` throughput (lines/s) and peak RSS, against same-run baselines.

For each size (default 1e6 and 1e7 lines of HIBP's `SHA1:COUNT`, sorted by hash, CRLF) and
each database, the real CLI runs in a child process; its peak RSS comes from os.wait4.
Baselines, run the same way on the same file:
  parse  - a minimal Python loop reading and parsing the lines (no regex, no database):
           roughly the floor of any pure-Python importer;
  load   - that loop feeding the backend's fastest plain load into the same table, in one
           transaction (SQLite executemany of a plain INSERT; PostgreSQL binary COPY).
A plain-password list (default 1e6 lines) is imported once per database as well, and
with --prefix-files the same SHA1:COUNT lines as a folder of per-prefix files, as the
downloader's `-s false` writes them (ABCDE.txt, CRLF, no final newline, 1,000 lines each).

    .venv/bin/python bench/import_corpus.py                      # 1e6 and 1e7, both databases
    .venv/bin/python bench/import_corpus.py --sizes 1e6 --db sqlite --plain 0
"""

from __future__ import annotations

import argparse
import binascii
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CLI,
    PYTHON,
    BenchDB,
    add_breach,
    bench_db,
    bulk_load,
    cli_env,
    hibp_counts,
    human,
    parse_size,
    random_digests,
    run_child,
    table,
    verdict,
    workdir,
    write_hibp_file,
    write_plain_file,
)

FLOOR_RATE = 200_000
PER_FILE = 1_000  # lines per per-prefix file: real ranges hold one to two thousand
THIS = str(Path(__file__).resolve())


# --- child processes (so each gets its own peak RSS) ---------------------------------------


def _parsed(path: str) -> object:
    with open(path, "rb", buffering=1 << 20) as fh:
        for line in fh:
            digest, _, count = line.rstrip(b"\r\n").partition(b":")
            yield binascii.unhexlify(digest), int(count)


def child(argv: list[str]) -> None:
    """Prints the seconds of the work itself (interpreter start-up excluded, as the import's
    own report excludes it)."""
    mode, path = argv[0], argv[1]
    started = time.perf_counter()
    if mode == "parse":
        for _ in _parsed(path):  # type: ignore[attr-defined]
            pass
    elif mode == "parse-plain":
        import hashlib

        n = 0
        with open(path, "rb", buffering=1 << 20) as fh:
            for line in fh:
                hashlib.sha1(line.rstrip(b"\r\n"), usedforsecurity=False).digest()
                n += 1
    elif mode == "load":
        db = BenchDB(**json.loads(argv[2]))
        breach_id = int(argv[3])
        rows = ((d, breach_id, c) for d, c in _parsed(path))  # type: ignore[attr-defined]
        bulk_load(db, "pwned_passwords", rows, ("sha1", "breach_id", "count"))
    else:
        raise SystemExit(f"unknown child mode {mode}")
    print(time.perf_counter() - started)


# --- the benchmark --------------------------------------------------------------------------


def import_cli(db: BenchDB, work: Path, path: Path, fmt: str) -> tuple[float, float, float, dict]:
    """(wall s, import s as the report says, peak RSS MiB, report) of the real CLI."""
    run = run_child(
        [
            CLI,
            "corpus",
            "import",
            str(path),
            "--type",
            "passwords",
            "--breach",
            "bench",
            "--format",
            "auto",
            "--json",
        ],
        env=cli_env(db, work / "instance"),
    )
    report = json.loads(run.stdout)
    # `--format auto`, as a user would run it: the report says what was detected.
    assert report["format"] == fmt, report
    return run.seconds, float(report["seconds"]), run.max_rss_mib, report


def write_prefix_folder(folder: Path, n: int, seed: int) -> None:
    """n `SUFFIX:COUNT` lines as the downloader's per-prefix files: `ABCDE.txt`, sorted
    (as HIBP answers a range), CRLF between lines and none after the last, PER_FILE lines
    a file (so n / PER_FILE prefixes, from 00000 up)."""
    digests = random_digests(n, seed)
    counts = hibp_counts(n, seed + 1)
    folder.mkdir()
    for start in range(0, n, PER_FILE):
        stop = start + PER_FILE
        lines = zip(digests[start:stop], counts[start:stop], strict=True)
        body = "\r\n".join(sorted(f"{d.hex().upper()[5:]}:{c}" for d, c in lines))
        (folder / f"{start // PER_FILE:05X}.txt").write_bytes(body.encode("ascii"))


def baseline_load(db: BenchDB, path: Path) -> tuple[float, float]:
    breach_id = add_breach(db, "raw", "passwords")
    spec = json.dumps(
        {
            "kind": db.kind,
            "url": db.url,
            "path": str(db.path) if db.path else None,
            "pg_name": db.pg_name,
        }
    )
    run = run_child([PYTHON, THIS, "--child", "load", str(path), spec, str(breach_id)])
    return float(run.stdout), run.max_rss_mib


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1e6,1e7", help="comma-separated line counts (1e6,1e7)")
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument(
        "--plain",
        type=parse_size,
        default=1_000_000,
        help="lines of the plain-password list (0: skip)",
    )
    ap.add_argument("--no-load-baseline", action="store_true", help="skip the raw-load baseline")
    ap.add_argument(
        "--prefix-files",
        action="store_true",
        help="also import each size as a folder of per-prefix files (downloader's -s false)",
    )
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]

    rows: list[list[object]] = []
    rss: dict[tuple[str, int], float] = {}
    rates: list[float] = []
    with workdir() as work:
        for n in sizes:
            path = work / f"hibp-{n}.txt"
            write_hibp_file(path, n, args.seed)
            size_mib = path.stat().st_size / 2**20
            parse = run_child([PYTHON, THIS, "--child", "parse", str(path)])
            parse_rate = n / float(parse.stdout)
            rows.append(
                [
                    f"{human(n)} sha1",
                    "-",
                    "parse baseline",
                    float(parse.stdout),
                    parse_rate,
                    parse.max_rss_mib,
                    1.0,
                    "-",
                ]
            )
            print(
                f"# {human(n)} lines ({size_mib:.0f} MiB): parse baseline {parse_rate:,.0f}/s",
                file=sys.stderr,
            )
            for kind in args.db:
                load_rate = float("nan")
                if not args.no_load_baseline:
                    with bench_db(kind, work, f"raw{n}") as db:
                        secs, mib = baseline_load(db, path)
                    load_rate = n / secs
                    rows.append(
                        [
                            f"{human(n)} sha1",
                            kind,
                            "load baseline",
                            secs,
                            load_rate,
                            mib,
                            load_rate / parse_rate,
                            1.0,
                        ]
                    )
                with bench_db(kind, work, f"imp{n}") as db:
                    wall, secs, mib, report = import_cli(db, work, path, "sha1")
                assert report["password_entries"] == n and report["bad"] == 0, report
                rate = n / secs
                rates.append(rate)
                rss[(kind, n)] = mib
                rows.append(
                    [
                        f"{human(n)} sha1",
                        kind,
                        "corpus import",
                        secs,
                        rate,
                        mib,
                        rate / parse_rate,
                        rate / load_rate,
                    ]
                )
                print(
                    f"# {kind} {human(n)}: import {rate:,.0f}/s (wall {wall:.1f} s), "
                    f"load baseline {load_rate:,.0f}/s, peak RSS {mib:.0f} MiB",
                    file=sys.stderr,
                )
            path.unlink()
            if args.prefix_files:
                folder = work / f"ranges-{n}"
                write_prefix_folder(folder, n, args.seed)
                for kind in args.db:
                    with bench_db(kind, work, f"pre{n}") as db:
                        wall, secs, mib, report = import_cli(db, work, folder, "prefix")
                    assert report["password_entries"] == n and report["bad"] == 0, report
                    rows.append(
                        [
                            f"{human(n)} prefix files",
                            kind,
                            "corpus import",
                            secs,
                            n / secs,
                            mib,
                            n / secs / parse_rate,
                            "-",
                        ]
                    )
                shutil.rmtree(folder)
        if args.plain:
            path = work / "plain.txt"
            write_plain_file(path, args.plain, args.seed + 7)
            parse = run_child([PYTHON, THIS, "--child", "parse-plain", str(path)])
            parse_rate = args.plain / float(parse.stdout)
            rows.append(
                [
                    f"{human(args.plain)} plain",
                    "-",
                    "read+sha1 baseline",
                    float(parse.stdout),
                    parse_rate,
                    parse.max_rss_mib,
                    1.0,
                    "-",
                ]
            )
            for kind in args.db:
                with bench_db(kind, work, "plain") as db:
                    wall, secs, mib, report = import_cli(db, work, path, "plain")
                rate = args.plain / secs
                rows.append(
                    [
                        f"{human(args.plain)} plain",
                        kind,
                        "corpus import",
                        secs,
                        rate,
                        mib,
                        rate / parse_rate,
                        "-",
                    ]
                )

    print()
    print(
        table(
            ["input", "db", "what", "seconds", "lines/s", "peak RSS MiB", "x parse", "x load"], rows
        )
    )
    print()
    print(
        f"floor >= {FLOOR_RATE:,} lines/s (sha1 imports): "
        f"{verdict(bool(rates) and min(rates) >= FLOOR_RATE)} (slowest {min(rates):,.0f}/s)"
    )
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        for kind in args.db:
            growth = rss[(kind, hi)] / rss[(kind, lo)]
            print(
                f"peak RSS {kind}: {rss[(kind, lo)]:.0f} MiB at {human(lo)} -> "
                f"{rss[(kind, hi)]:.0f} MiB at {human(hi)} (x{growth:.2f}; flat if < 1.25): "
                f"{verdict(growth < 1.25)}"
            )


if __name__ == "__main__":
    main()
