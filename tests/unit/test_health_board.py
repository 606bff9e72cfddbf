"""What /health makes of the progress board: starting, ok, degraded."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from porting_runtime.health import ProgressBoard
from porting_runtime.http import add_operational_routes


class NothingStored:
    """The database's answer when nothing is set aside and no timer failed."""

    async def fetchrow(self, _query: str) -> dict[str, int]:
        return {"set_aside": 0, "failed_timers": 0}


async def _health(board: ProgressBoard) -> tuple[int, dict]:
    app = FastAPI()

    async def components() -> dict[str, object]:
        return {}

    add_operational_routes(app, service="portability", pool=NothingStored(), components=components,  # type: ignore[arg-type]
                           board=board)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        answer = await client.get("/health")
    return answer.status_code, answer.json()


async def test_a_service_whose_consumer_is_joining_its_group_is_starting_not_ok():
    board = ProgressBoard()
    board.starting("consumer", "joining consumer group porting-portability")
    status, body = await _health(board)
    assert status == 503 and body["status"] == "starting"
    assert body["problems"]["consumer"].endswith("joining consumer group porting-portability")


async def test_a_service_whose_consumer_joined_is_ok():
    board = ProgressBoard()
    board.starting("consumer", "joining consumer group porting-portability")
    board.started("consumer")
    assert await _health(board) == (200, {"service": "portability", "status": "ok", "database": "ok", "problems": {}})


async def test_a_service_starting_while_another_part_fails_is_degraded():
    board = ProgressBoard()
    board.starting("consumer", "joining consumer group porting-portability")
    board.failing("loop consumer", "KafkaConnectionError: the broker is away")
    status, body = await _health(board)
    assert status == 503 and body["status"] == "degraded"
    assert set(body["problems"]) == {"consumer", "loop consumer"}


async def test_a_consumer_still_joining_after_the_stall_time_is_degraded_not_starting():
    board = ProgressBoard()
    board.starting("consumer", "joining consumer group porting-portability")
    board.parts["consumer"].starting_since -= 61  # as if the join began 61 s ago (stalled after 60 s)
    status, body = await _health(board)
    assert status == 503 and body["status"] == "degraded"
    assert body["problems"]["consumer"].startswith("still joining consumer group porting-portability after 61")
