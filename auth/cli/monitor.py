"""`breachguard monitor`: one monitoring run (for cron or a systemd timer), and
`breachguard monitor subscribe`: register the accounts' e-mail prefixes with HIBP."""

from __future__ import annotations

import json
from typing import Any

import click

from auth.breach import monitor as monitoring
from auth.breach import subscribe as subscribing
from auth.breach.pacing import Budget, Pacer
from auth.cli.common import Exit, actor, handle_errors, services
from auth.services import Services

_BUDGET = [
    click.option(
        "--max-prefixes",
        type=click.IntRange(min=0),
        default=None,
        help="Ask HIBP about at most this many prefixes in this run (default: no limit).",
    ),
    click.option(
        "--max-seconds",
        type=click.FloatRange(min=0),
        default=None,
        help="Stop asking HIBP after this many seconds (default: no limit).",
    ),
]


def _budget_options(f: Any) -> Any:
    for option in reversed(_BUDGET):
        f = option(f)
    return f


@click.group("monitor", invoke_without_command=True)
@_budget_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
def monitor(
    ctx: click.Context, max_prefixes: int | None, max_seconds: float | None, fmt: str
) -> None:
    """Re-check only what changed, then apply the finding policy (FINDING_POLICY).

    One run: breach imports not yet checked (every account against each), accounts
    created since the last run (against every breach), with HIBP as a source a slice of
    the pass over e-mail prefixes (paced to HIBP_RATE_PER_MINUTE, resumed where the last
    run stopped), then the policy table. Safe to kill: a rerun continues. Run one at a
    time (cron: `flock -n`). Exit 0 ok, 1 when a source failed.
    """
    if ctx.invoked_subcommand is not None:
        return
    registry = services(ctx)
    with handle_errors():
        report = monitoring.run(
            registry,
            actor=actor(),
            budget=Budget(max_items=max_prefixes, max_seconds=max_seconds),
        )
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print_text(report)
    for err in report.errors:
        click.echo(f"error: {err}", err=True)
    if report.errors:
        ctx.exit(1)


def _print_text(report: monitoring.MonitorReport) -> None:
    for name, new in report.breaches.items():
        click.echo(f"import {name!r} checked: {new} new finding(s)")
    click.echo(
        f"{report.accounts_checked} new account(s) checked: "
        f"{report.account_findings} new finding(s)"
    )
    if report.hibp is not None:
        h = report.hibp
        if h.failed_prefix is not None:
            state = (
                f"stopped at {h.failed_prefix}: HIBP failed, its {h.failed_accounts} "
                "account(s) not checked (asked again first next run)"
            )
        elif h.pass_finished:
            state = "pass finished"
        else:
            state = f"stopped after {h.cursor or 'the start'}" + (
                " (budget)" if h.stopped_by_budget else ""
            )
        click.echo(f"HIBP: {h.prefixes} prefix(es) asked, {h.new_findings} new finding(s), {state}")
    p = report.policy
    click.echo(
        f"policy: {p.reset_accounts} account(s) reset for {p.reset_findings} finding(s), "
        f"{p.mfa_accounts} account(s) newly required a second factor for "
        f"{p.mfa_findings} finding(s)"
    )


@monitor.command("subscribe")
@_budget_options
@click.option(
    "--skip-plan-check",
    is_flag=True,
    help="Do not ask HIBP's /subscription/status whether the plan includes k-anonymity.",
)
@click.pass_context
def subscribe(
    ctx: click.Context, max_prefixes: int | None, max_seconds: float | None, skip_plan_check: bool
) -> None:
    """Register the accounts' e-mail prefixes for HIBP's breach callbacks.

    HIBP's public API v3 documents no range-subscription endpoint: this speaks the
    protocol of HIBP's enterprise k-anonymity service as Mozilla Monitor uses it
    (POST {HIBP_KANON_URL}/range/subscribe {"hashPrefix": "ABCDEF"}, header
    Hibp-Enterprise-Api-Key = HIBP_KANON_API_KEY; 201 new, 200 already subscribed),
    against the URL HIBP gives you, which has no default. Before subscribing, the plan is
    checked with the documented GET {HIBP_API_URL}/subscription/status (IncludesKAnon).
    Only 6-hex prefixes leave the process. Paced to HIBP_RATE_PER_MINUTE, resumable;
    later runs register only the prefixes of accounts created since.
    """
    registry = services(ctx)
    settings = registry.settings
    if not settings.hibp_kanon_url:
        raise Exit(
            "HIBP_KANON_URL is not set: HIBP gives the range-subscription URL with an "
            "enterprise k-anonymity plan (it is not part of the public API v3)"
        )
    with handle_errors():
        client = subscribing.SubscribeClient.from_settings(settings)
        if not skip_plan_check:
            plan = client.plan()
            if not plan.includes_kanon:
                raise Exit(
                    f"the HIBP plan {plan.name!r} does not include k-anonymity "
                    "(IncludesKAnon is false): prefixes cannot be subscribed"
                )
        result = subscribing.run(
            registry.db,
            client,
            actor=actor(),
            pacer=Pacer(settings.hibp_rate_per_minute),
            budget=Budget(max_items=max_prefixes, max_seconds=max_seconds),
        )
    click.echo(
        f"{result.created} prefix(es) newly subscribed, {result.existing} already, "
        + ("all accounts covered" if result.finished else f"stopped after {result.cursor}")
    )
    for err in result.errors:
        click.echo(f"error: {err}", err=True)
    if result.errors:
        ctx.exit(1)


def after_import(registry: Services, breach: str) -> dict[str, Any]:
    """`corpus import`'s follow-up (unless --no-monitor): that import, then the policy."""
    with handle_errors():
        return monitoring.after_import(registry, breach, actor=actor())


def echo_after_import(checked: dict[str, Any]) -> None:
    p = checked["policy"]
    click.echo(
        f"accounts checked against this import: {checked['new_findings']} new finding(s); "
        f"policy: {p['reset_accounts']} account(s) reset, {p['mfa_accounts']} newly "
        "required a second factor"
    )
