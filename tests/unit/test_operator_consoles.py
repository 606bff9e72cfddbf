"""Every operator command prints what came from outside as text, never as rich markup."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from porting_runtime.operator_cli import operator_console

SERVICES = Path(__file__).resolve().parents[2] / "services"


def test_no_command_makes_a_console_of_its_own_only_operator_console_does():
    # A console made elsewhere reads markup by default: "[/]" in a sid or a reason crashes it,
    # "[link=...]" shows as a live hyperlink in the operator's terminal.
    makers = [str(path.relative_to(SERVICES)) for path in SERVICES.rglob("*.py")
              if "Console(" in path.read_text() and path.name != "operator_cli.py"]
    assert makers == []


def test_a_closing_tag_or_a_hyperlink_in_printed_text_comes_out_as_written():
    console = operator_console()
    with console.capture() as captured:
        console.print("[/] [link=https://evil.example]reset[/link] :smile:", style="red")
    assert captured.get().strip() == "[/] [link=https://evil.example]reset[/link] :smile:"


def test_control_characters_and_direction_overrides_in_printed_text_never_reach_the_terminal():
    # From a caught e-mail's subject, a carrier's reason, an event's id: a screen clear, a title
    # change, a hyperlink, a bell, a direction override.
    hostile = "a\x1b[2J b\x1b]0;owned\x07 c\x1b]8;;https://evil.example\x1b\\link d\u202eesrever\u2066 e\x9b31m"
    console = operator_console()
    table = Table("subject")
    table.add_row(hostile)
    table.add_row(Text(hostile, style="bold"))
    with console.capture() as captured:
        console.print(hostile)
        console.print(Text.assemble(("Subject:", "bold"), f" {hostile}"))
        console.print(table)
    shown = captured.get()
    assert not set(shown) & {"\x1b", "\x07", "\x9b", "\u202e", "\u2066"}
    assert shown.count("\ufffdesrever\ufffd") == 4, "each one shown, in its place"
