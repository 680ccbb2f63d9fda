"""The `breachguard` command group: one module per command or group of commands.

Exit status: 0 ok, 1 findings or failures the caller must act on, 2 bad input or usage.
"""

from __future__ import annotations

import click

from auth.cli import (
    accounts,
    alerts,
    apikeys,
    audit,
    backup,
    bans,
    check,
    common,
    corpus,
    doctor,
    mfa,
    monitor,
    notices,
    reset,
    scan,
    service,
)


class _Group(click.Group):
    """The group: a database that fails under a command (disk full, read-only, gone) is one
    line naming the database and the cause, and exit status 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not common.is_database_failure(exc):
                raise
            raise common.Exit(common.database_failure(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    alerts.alerts_group,
    bans.ban,
    monitor.monitor,
    audit.audit_group,
    audit.report_group,
    doctor.doctor_command,
    backup.backup_command,
):
    main.add_command(command)
