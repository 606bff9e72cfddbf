"""The ledger service, killed (SIGKILL) right after its database commit and before its offset commit."""

from __future__ import annotations

import asyncio
import os
import signal

from porting_runtime import RunningService, ServiceSettings

from .ledger import LEDGER


async def _die(records: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main() -> None:
    service = RunningService(LEDGER, ServiceSettings(), serve_http=False, after_commit=_die)
    await service.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
