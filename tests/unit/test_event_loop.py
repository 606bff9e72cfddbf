"""The loop the tests run on is the one the services run on."""

from __future__ import annotations

import asyncio

import uvloop

from porting_runtime import event_loop


async def test_tests_run_on_the_event_loop_the_services_run_on() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


def test_the_runtime_runs_a_coroutine_to_its_result_on_uvloop() -> None:
    async def which_loop() -> type:
        return type(asyncio.get_running_loop())

    assert event_loop.run(which_loop()) is uvloop.Loop
