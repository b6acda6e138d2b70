"""Bad input to the command line: one line naming the problem, exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from .cli import run_cli

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("backtest", "/nonexistent/batches", "--target", "y"), "/nonexistent/batches: not a folder of batch files"),
        (("run", "--config", "/nonexistent/retrainer.yaml", "b.csv"), "/nonexistent/retrainer.yaml: config file not found"),
        (("backtest", "/tmp", "--target", "y", "--shadow", "2"),
         "--shadow N (N >= 0) compares shadow on and off within --baselines"),
    ],
)
def test_bad_input_gives_one_line_error(args: tuple[str, ...], message: str) -> None:
    """A wrong path exits with status 2 and one line naming it, no traceback."""
    done = run_cli(*args, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"retrainer: error: {message}"


def test_bad_config_setting_is_named(tmp_path: Path) -> None:
    """An invalid setting in the config file is reported by its dotted name."""
    config = tmp_path / "retrainer.yaml"
    config.write_text("model:\n  target: y\npromotion:\n  mode: sometimes\n")
    done = run_cli("run", "--config", str(config), str(config), timeout=120)
    assert done.returncode == 2
    assert "setting 'promotion.mode'" in done.stderr
    assert "Traceback" not in done.stderr
