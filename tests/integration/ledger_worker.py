"""The ledger service as its own process. LEDGER_DIE_AFTER_COMMIT=1 kills it (SIGKILL) right after
its first database commit, before the offset commit."""

from __future__ import annotations

import os
import signal

from porting_runtime.service import main as service_main

from .ledger import LEDGER


async def _die(records: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    crash = _die if os.environ.get("LEDGER_DIE_AFTER_COMMIT") == "1" else None
    service_main(LEDGER, after_commit=crash)


if __name__ == "__main__":
    main()
