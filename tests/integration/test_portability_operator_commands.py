"""The portability operator commands of the `porting` tool, on a real database."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from porting_cli.main import app

PARENT, CHILD = "AC" + "1" * 32, "AC" + "2" * 32
runner = CliRunner()


def porting(database_url: str, *args: str):
    return runner.invoke(app, [*args, "--database-url", database_url], catch_exceptions=False, env={"COLUMNS": "200"})


def answer(result) -> dict:
    """The first JSON document the command printed."""
    return json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{"):])[0]


def test_accounts_inventory_and_blocks_feed_the_portability_check(database_url, tmp_path):
    assert porting(database_url, "accounts", "add", PARENT, "--token", "p").exit_code == 0
    assert porting(database_url, "accounts", "add", CHILD, "--token", "c", "--parent", PARENT).exit_code == 0
    assert porting(database_url, "inventory", "add", "+14155562601", "--account", CHILD).exit_code == 0
    holdings = tmp_path / "inventory.csv"
    holdings.write_text("phone_number,account_sid\n+14155562602,%s\n+14155562603,%s\n" % (PARENT, PARENT))
    assert "imported 2 holdings" in porting(database_url, "inventory", "import", str(holdings)).stdout
    blocks = tmp_path / "blocks.csv"
    blocks.write_text("prefix,carrier_name,carrier_id,wireless,rate_center\n+1415555,Pacific Wireless,PW-1,yes,SNFC\n")
    assert "imported 1 number blocks" in porting(database_url, "numbering", "import", str(blocks)).stdout

    sibling = answer(porting(database_url, "check", "+14155562601", "--target", PARENT))
    assert (sibling["not_portable_reason_code"], sibling["account_sid"]) == (22136, CHILD)
    own = answer(porting(database_url, "check", "+14155562602", "--target", PARENT))
    assert own["not_portable_reason_code"] == 22131
    mobile_check = porting(database_url, "check", "+14155552671", "--target", PARENT, "--requirements")
    mobile = answer(mobile_check)
    assert '"track": "api"' in mobile_check.stdout, "what its port requires"
    assert (mobile["number_type"], mobile["pin_and_account_number_required"], mobile["portable"]) == ("MOBILE", True, True)
    anyone = answer(porting(database_url, "check", "+14155562602"))
    assert anyone["not_portable_reason_code"] == 22132, "without a target, every holder is someone else"


def test_an_import_with_a_bad_row_imports_nothing_and_says_which_line(database_url, tmp_path):
    holdings = tmp_path / "inventory.csv"
    holdings.write_text("phone_number,account_sid\n+14155562602,%s\n415 555 2603,%s\n" % (PARENT, PARENT))
    result = porting(database_url, "inventory", "import", str(holdings))
    assert result.exit_code == 2
    assert "line 3" in result.stdout and "nothing imported" in result.stdout
    assert answer(porting(database_url, "check", "+14155562602"))["portable"]


def test_bad_arguments_are_refused_with_a_clear_reason(database_url, tmp_path):
    assert "must match AC" in porting(database_url, "accounts", "add", "AC123", "--token", "x").stdout
    assert "add it first" in porting(database_url, "accounts", "add", CHILD, "--token", "x", "--parent", PARENT).stdout
    assert "22102" in porting(database_url, "inventory", "add", "12345", "--account", PARENT).stdout
    blocks = tmp_path / "blocks.csv"
    blocks.write_text("prefix,carrier\n1415,x\n")
    assert "missing column" in porting(database_url, "numbering", "import", str(blocks)).stdout
