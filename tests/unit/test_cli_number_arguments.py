"""Numbers an operator types are checked before any server is asked: one beyond what the
database holds used to read as "is the stack running?"."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from porting_cli.main import app

runner = CliRunner()


@pytest.mark.parametrize("args", [
    ("dead-letters", "redrive", "workflow", "9223372036854775808"),
    ("dead-letters", "redrive", "workflow", "0"),
    ("dead-letters", "show", "workflow", "99999999999999999999"),
    ("dead-letters", "list", "workflow", "--limit", "-1"),
    ("replay", "workflow", "--from-offset", "9223372036854775808"),
])
def test_an_id_limit_or_offset_out_of_range_is_refused_as_such_before_any_server_is_asked(args):
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and "stack" not in result.output
