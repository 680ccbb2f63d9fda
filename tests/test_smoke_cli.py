from click.testing import CliRunner

from auth.cli import main


def test_demo_then_scan_reports_the_seeded_exposures(runner: CliRunner) -> None:
    assert runner.invoke(main, ["demo"]).exit_code == 0
    result = runner.invoke(main, ["scan", "--format", "csv"])
    assert result.exit_code == 1, result.output
    assert "luc.bernard@infirmier-exemple.fr,valid_credential,local,Webmail2022" in result.output
