"""`porting up` keeps the stack up when a service exits: started again, unless it keeps exiting."""

from __future__ import annotations

from porting_cli import stack as local


class Exited:
    def __init__(self, code: int | None) -> None:
        self.returncode = code

    def poll(self) -> int | None:
        return self.returncode


def _stack(tmp_path, monkeypatch, *, dies_again: bool) -> local.LocalStack:
    stack = local.LocalStack(tmp_path)
    stack.services = [local.ServiceSpec("notifier", 2)]
    stack.processes = {"notifier": Exited(-9)}
    started = []

    def start(service):
        started.append(service.name)
        stack.processes[service.name] = Exited(1 if dies_again else None)

    monkeypatch.setattr(stack, "_start_service", start)
    stack.started = started  # type: ignore[attr-defined]
    return stack


def test_a_service_killed_outright_is_started_again_and_said_so(tmp_path, monkeypatch):
    stack = _stack(tmp_path, monkeypatch, dies_again=False)
    looked = stack.supervise()
    assert looked.restarted == [("notifier", -9)] and looked.fatal == []
    assert stack.supervise().restarted == [], "running again: nothing more to do"
    assert stack.started == ["notifier"]  # type: ignore[attr-defined]


def test_a_service_that_keeps_exiting_stops_the_stack_instead_of_restarting_forever(tmp_path, monkeypatch):
    stack = _stack(tmp_path, monkeypatch, dies_again=True)
    looks = [stack.supervise() for _ in range(local.RESTARTS_ALLOWED + 1)]
    assert all(look.restarted and not look.fatal for look in looks[:-1])
    assert looks[-1].restarted == [] and looks[-1].fatal == [
        f"notifier (exited {local.RESTARTS_ALLOWED + 1} times within {local.RESTART_WINDOW_SECONDS:.0f} s)"]


def test_the_broker_gone_is_fatal_since_its_messages_went_with_it(tmp_path, monkeypatch):
    stack = _stack(tmp_path, monkeypatch, dies_again=False)
    stack.kafka.process = Exited(-9)  # type: ignore[assignment]
    looked = stack.supervise()
    assert looked.fatal == ["the Kafka broker (its messages are gone)"] and looked.restarted == []
