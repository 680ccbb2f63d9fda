"""The `breachguard` command group: one module per command or group of commands.

Exit status: 0 ok, 1 findings or failures the caller must act on, 2 bad input or usage.
"""

from __future__ import annotations

import click

from auth.cli import (
    accounts,
    apikeys,
    audit,
    bans,
    check,
    corpus,
    mfa,
    monitor,
    notices,
    reset,
    scan,
    service,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """breachguard: find accounts exposed by credential leaks and protect them."""


for command in (
    service.init,
    service.serve,
    service.demo,
    accounts.accounts_group,
    apikeys.apikey_group,
    mfa.mfa_group,
    corpus.corpus,
    check.check,
    scan.scan,
    reset.reset,
    notices.notices_group,
    bans.ban,
    monitor.monitor,
    audit.audit_group,
    audit.report_group,
):
    main.add_command(command)
