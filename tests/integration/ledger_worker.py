"""The ledger service as its own process. LEDGER_DIE_AFTER_COMMIT=1 kills it (SIGKILL) right after
its first database commit, before the offset commit."""

from __future__ import annotations

import asyncio
import os
import signal

from porting_runtime import RunningService, ServiceSettings

from .ledger import LEDGER


async def _die(records: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main() -> None:
    crash = _die if os.environ.get("LEDGER_DIE_AFTER_COMMIT") == "1" else None
    service = RunningService(LEDGER, ServiceSettings(), serve_http=False, after_commit=crash)
    await service.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
