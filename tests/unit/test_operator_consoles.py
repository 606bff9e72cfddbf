"""Every operator command prints what came from outside as text, never as rich markup."""

from __future__ import annotations

import importlib

import pytest
from rich.console import Console

from porting_runtime.operator_cli import operator_console

CLI_MODULES = ["porting_cli.main", "porting_cli.dead_letters", "porting_cli.replay", "porting_cli.runtime_tables",
               "portability.entrypoints.cli", "workflow.entrypoints.cli", "notifier.entrypoints.cli"]


@pytest.mark.parametrize("module", CLI_MODULES)
def test_each_operator_command_module_prints_with_a_console_that_reads_no_markup(module):
    consoles = [v for v in vars(importlib.import_module(module)).values() if isinstance(v, Console)]
    assert consoles, f"{module} has no console of its own"
    assert all(not c._markup and not c._emoji for c in consoles), module  # noqa: SLF001


def test_a_closing_tag_or_a_hyperlink_in_printed_text_comes_out_as_written():
    console = operator_console()
    with console.capture() as captured:
        console.print("[/] [link=https://evil.example]reset[/link] :smile:", style="red")
    assert captured.get().strip() == "[/] [link=https://evil.example]reset[/link] :smile:"
