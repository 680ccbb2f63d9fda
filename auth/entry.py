"""The `breachguard` program's entry point, in a module that imports nothing heavy, so
that the collector can be kept out of the start-up (the tests call auth.cli.main)."""

from __future__ import annotations

import gc


def run() -> None:
    """Load the commands with the cyclic collector off, then freeze what they made.

    Loading them makes ~70,000 long-lived objects and hardly any garbage (542 unreachable
    objects): collections during the imports cost ~45 ms of ~330 ms. gc.freeze() then
    spares every later full collection from walking those objects again, which a bulk
    command's allocations set off again and again (`breachguard reset` of 1e5 of 1e6
    accounts on SQLite: 5.07 s -> 4.67 s, four alternated runs). The little garbage made
    while loading is frozen with the rest: a few kilobytes, for the life of a command."""
    gc.disable()
    try:
        from auth.cli import main
    finally:
        gc.freeze()
        gc.enable()
    main()
