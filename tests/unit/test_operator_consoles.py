"""Every operator command prints what came from outside as text, never as rich markup."""

from __future__ import annotations

from pathlib import Path

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
