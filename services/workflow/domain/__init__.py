"""The port-in lifecycle, pure: no I/O, the current time is an argument."""

from .decisions import CancelTimer, Decisions, FeeRecorded, HistoryEntry, HistoryKind, ScheduleTimer, TimerKind
from .numbers import NumberState, derive_request_status
from .request import PortInRequest, decide, decide_in_order

__all__ = ["CancelTimer", "Decisions", "FeeRecorded", "HistoryEntry", "HistoryKind", "NumberState",
           "PortInRequest", "ScheduleTimer", "TimerKind", "decide", "decide_in_order",
           "derive_request_status"]
