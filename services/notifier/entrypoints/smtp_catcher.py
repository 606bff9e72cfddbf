"""Run the local SMTP catcher: python -m notifier.entrypoints.smtp_catcher --maildir DIR --port 1025"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from porting_runtime import event_loop

from ..adapters.mail_catcher import start_catcher


async def serve(maildir: Path, host: str, port: int) -> None:
    server = await start_catcher(maildir, host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    print(f"catching mail on {host}:{port} into {maildir}", flush=True)
    await stopping.wait()
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Accept every e-mail and keep it in a Maildir (for local stacks).")
    parser.add_argument("--maildir", type=Path, default=Path(".porting/mail"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    arguments = parser.parse_args(argv)
    event_loop.run(serve(arguments.maildir.resolve(), arguments.host, arguments.port))


if __name__ == "__main__":
    main()
