"""`porting bench`: its arithmetic, pacing, follow-up collection and report shape, without servers.

(A run against the embedded stack takes well over 30 seconds even with a handful of events:
consumer groups take seconds to form. `make bench` is the run; these check its parts.)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import phonenumbers
import pytest

from porting_cli import bench, bench_host, bench_load, bench_phases, bench_report, bench_setup, bench_wiring
from porting_cli.bench_scenarios import PORTABILITY, SCENARIOS, bench_number, by_key, scenario_named
from porting_cli.bench_stats import due, latency_summary, paced_events, percentile, rate, ratio, schedule, target
from schemas import PortRequested, decode

# --- arithmetic ---------------------------------------------------------------------------------------


def test_percentiles_interpolate_between_the_nearest_ranks():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 90) == pytest.approx(90.1)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7


def test_a_percentile_of_nothing_or_out_of_range_is_refused():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latencies_are_summarised_in_milliseconds():
    summary = latency_summary([0.010, 0.020, 0.030, 0.040, 1.0])
    assert summary == {"count": 5, "p50_ms": 30.0, "p90_ms": pytest.approx(616.0), "p99_ms": pytest.approx(961.6),
                       "max_ms": 1000.0, "mean_ms": 220.0}
    assert latency_summary([]) == {"count": 0}


def test_rates_and_ratios_of_nothing_are_not_infinite():
    assert rate(1000, 0.5) == 2000
    assert rate(1000, 0) == 0
    assert ratio(1, 4) == 0.25
    assert ratio(1, 0) is None


def test_targets_are_reported_met_or_not_and_unknown_when_not_measured():
    assert target(6000, 5000) == {"goal": ">= 5000", "measured": 6000, "met": True}
    assert target(4999.9, 5000)["met"] is False
    assert target(249.9, 250, at_most=True) == {"goal": "< 250", "measured": 249.9, "met": True}
    assert target(250, 250, at_most=True)["met"] is False
    assert target(None, 5)["met"] is None


# --- pacing -------------------------------------------------------------------------------------------


def test_a_paced_producer_sends_the_first_event_at_once_then_one_per_interval():
    assert due(0.0, 100, 1000) == 1
    assert due(0.0099, 100, 1000) == 1
    assert due(0.01, 100, 1000) == 2
    assert due(1.0, 100, 1000) == 101
    assert due(100.0, 100, 1000) == 1000  # never more than there are
    assert due(-1.0, 100, 1000) == 0
    assert schedule(4, 2.0) == [0.0, 0.5, 1.0, 1.5]
    with pytest.raises(ValueError):
        schedule(4, 0)


def test_a_paced_phase_lasts_about_the_time_asked_within_bounds():
    assert paced_events(2500, 10) == 25_000
    assert paced_events(3, 10, minimum=100) == 100
    assert paced_events(2500, 10, maximum=5000) == 5000


@dataclass
class FakeProducer:
    """Takes records like aiokafka's producer: send() returns a delivery to await."""

    sent: list[tuple[float, bytes]]

    async def send(self, topic, value, key=None, headers=None):
        self.sent.append((bench_load.now(), key))
        delivery = asyncio.get_running_loop().create_future()
        delivery.set_result(None)
        return delivery


async def test_paced_publishing_never_sends_an_event_before_it_is_due():
    workload = PORTABILITY.workload(40, "t.")
    producer, sent = FakeProducer([]), {}
    start, last = await bench_load.publish_paced(producer, workload, 2000.0, sent)
    assert [key for _, key in producer.sent] == [r.key for r in workload.records]
    assert list(sent) == workload.keys
    for index, key in enumerate(workload.keys):
        assert sent[key] >= start + index / 2000.0 - 1e-6
    assert last - start >= 39 / 2000.0


async def test_publishing_at_full_speed_notes_when_each_key_was_published():
    workload = PORTABILITY.workload(25, "t.")
    producer, sent = FakeProducer([]), {}
    acknowledged = await bench_load.publish_all(producer, workload, sent)
    assert list(sent) == workload.keys
    assert acknowledged >= max(sent.values())


# --- collecting follow-ups ------------------------------------------------------------------------------


class FakeConsumer:
    def __init__(self, batches):
        self.batches = list(batches)

    async def getmany(self, timeout_ms=0, max_records=None):
        if self.batches:
            return {"tp": self.batches.pop(0)}
        await asyncio.sleep(timeout_ms / 1000)
        return {}


def record(key: str) -> SimpleNamespace:
    return SimpleNamespace(key=key.encode())


async def test_the_collector_notes_each_key_once_and_finishes_when_all_expected_arrived():
    collector = bench_load.Collector(SimpleNamespace(), ["t"], by_key)
    collector.expect(["a", "b", "c"])
    consumer = FakeConsumer([[record("a"), record("x")], [record("b"), record("a")], [record("c")]])
    collector._task = asyncio.create_task(collector._run(consumer))
    try:
        assert await collector.finished(timeout=5)
    finally:
        collector._task.cancel()
    assert set(collector.arrivals) == {"a", "b", "c", "x"}
    assert collector.duplicates == 1
    assert collector.arrivals["a"] <= collector.arrivals["b"] <= collector.arrivals["c"]


async def test_the_collector_says_how_many_did_not_arrive_in_time():
    collector = bench_load.Collector(SimpleNamespace(), ["t"], by_key)
    collector.expect(["a", "b"])
    collector._task = asyncio.create_task(collector._run(FakeConsumer([[record("a")]])))
    try:
        assert not await collector.finished(timeout=0.3)
    finally:
        collector._task.cancel()
    assert collector.missing == 1


# --- scenarios ------------------------------------------------------------------------------------------


def test_scenarios_are_registered_by_name():
    assert scenario_named("portability") is PORTABILITY
    assert set(SCENARIOS) >= {"portability"}
    with pytest.raises(KeyError):
        scenario_named("nothing")


def test_the_portability_workload_is_one_valid_request_per_key_on_the_prefixed_topic():
    workload = PORTABILITY.workload(5, "bench-x.")
    assert len(workload) == 5 and len(set(workload.keys)) == 5
    for key, kafka_record in zip(workload.keys, workload.records, strict=True):
        assert kafka_record.topic == "bench-x.porting.port-requested.v1"
        assert kafka_record.key == key.encode()
        event = decode(kafka_record.headers, kafka_record.value, expected_type=PortRequested.event_type)
        assert event.data.port_in_request_sid == key
        assert len(event.data.phone_numbers) == 1
    assert PORTABILITY.completion_topics("p.") == ["p.porting.portability-checked.v1"]
    assert PORTABILITY.input_topics("p.") == ["p.porting.port-requested.v1"]


def test_no_workload_of_a_run_repeats_the_numbers_of_another():
    def numbers(workload):
        return {decode(r.headers, r.value).data.phone_numbers[0].phone_number for r in workload.records}

    first, second = numbers(PORTABILITY.workload(50, "a.")), numbers(PORTABILITY.workload(50, "b."))
    assert len(first) == len(second) == 50 and not first & second


def test_the_benchmark_numbers_are_distinct_and_valid():
    numbers = [bench_number(i) for i in range(0, 150_000, 997)]
    assert len(set(numbers)) == len(numbers)
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)


# --- the machine and the report -------------------------------------------------------------------------


def test_the_machine_is_described_with_its_cores_and_load():
    described = bench_host.machine()
    assert described["cores"] == os.cpu_count()
    assert {"usable_cores", "cpu_model", "python", "platform"} <= set(described)


@pytest.mark.parametrize(("cores", "scenario", "expected"), [
    (2, "portability", 2), (2, "workflow", 2), (2, "pipeline", 1), (1, "portability", 1)])
def test_each_service_runs_one_instance_per_core_unless_the_services_outnumber_the_cores(
        monkeypatch, cores, scenario, expected):
    monkeypatch.setattr(bench_host, "usable_cores", lambda: cores)
    assert bench.Options(scenario=scenario).instances_for(SCENARIOS[scenario]) == expected


def test_instances_asked_for_are_run_whatever_the_scenario(monkeypatch):
    monkeypatch.setattr(bench_host, "usable_cores", lambda: 2)
    assert bench.Options(scenario="pipeline", instances=2).instances_for(SCENARIOS["pipeline"]) == 2
    assert bench_setup.default_instances(1, partitions=1) == 1  # never more instances than partitions


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_cpu_time_is_measured_per_process():
    meter = bench_host.CpuMeter({"me": (os.getpid(), False), "gone": (2**22 + 1, False)})
    meter.start()
    sum(i * i for i in range(200_000))
    used = meter.stop(1.0)
    assert used["me"]["cpu_seconds"] >= 0 and used["me"]["cores"] >= 0
    assert used["gone"] is None


class FakePhases:
    """Stands in for the phases that need a broker: what each was asked, and made-up figures."""

    def __init__(self, peak=4000.0):
        self.peak, self.paced_at, self.raw_paced_at = peak, [], []

    def install(self, monkeypatch):
        fake = self

        async def raw(self, *, count=None, per_second=None):
            if per_second is not None:
                fake.raw_paced_at.append(per_second)
                return {"target_rate": per_second, "p99_ms": 20.0}
            return {"events": count, "events_per_second": 20_000.0}

        async def system(self, kind, *, count=None, per_second=None):
            if per_second is not None:  # the latency phase: a system of its own, paced
                fake.paced_at.append(per_second)
                return {"target_rate": per_second, "events": 100, "p50_ms": 40.0, "p90_ms": 80.0,
                        "p99_ms": 200.0, "max_ms": 300.0}
            if kind == "pipeline":
                self.results["settings"] = {"services": {"portability": {"consumer_batch_size": 500}}}
                return {"events": count, "events_per_second": fake.peak}
            return {"events": count, "events_per_second": 500.0}

        monkeypatch.setattr(bench.Bench, "_raw", raw)
        monkeypatch.setattr(bench.Bench, "_system", system)
        return self


STACK = SimpleNamespace(kafka=None, postgres=None, root=None)


async def test_the_report_is_one_json_object_with_every_measurement_ratio_and_setting(monkeypatch):
    phases = FakePhases().install(monkeypatch)
    monkeypatch.setattr(bench_host, "usable_cores", lambda: 2)
    report = await bench.Bench(bench.Options(scenario="portability", events=1000), STACK, PORTABILITY).run()

    assert phases.paced_at == [2000.0] and phases.raw_paced_at == [2000.0]  # half the measured peak
    assert json.loads(json.dumps(report)) == report
    assert {"benchmark", "scenario", "machine", "stack", "raw", "pipeline", "latency", "naive", "ratios",
            "targets", "settings", "duration_seconds"} <= set(report)
    assert report["machine"]["cores"] == os.cpu_count() and "load_at_start" in report["machine"]
    assert report["stack"]["postgres_durable"] is False and "fsync" in report["stack"]["note"]
    assert report["ratios"] == {"pipeline_to_raw": 0.2, "pipeline_to_naive": 8.0}
    assert report["latency"]["p99_ms"] == 200.0 and report["raw"]["latency_at_same_rate"]["target_rate"] == 2000.0
    assert report["targets"]["events_per_second"]["met"] is False
    assert report["targets"]["pipeline_to_raw"]["met"] is True
    assert report["targets"]["pipeline_to_naive"]["met"] is True
    assert report["targets"]["p99_ms_at_half_peak"]["met"] is True
    assert report["settings"]["services"]["portability"]["consumer_batch_size"] == 500
    assert report["settings"]["bench"]["events"] == 1000 and report["settings"]["bench"]["naive_events"] == 100
    assert report["settings"]["bench"]["instances_per_service"] == 2


@pytest.mark.parametrize(("asked", "expected"), [(None, 1), (2, 2)])
async def test_the_pipelines_services_start_with_as_many_instances_as_the_report_names(monkeypatch, asked, expected):
    monkeypatch.setattr(bench_host, "usable_cores", lambda: 2)
    started = []

    class Group:
        def __init__(self, kind, scenario, settings, log_level, instances):
            started.append(instances)

        async def start(self):
            return self

        async def stop(self):
            pass

    monkeypatch.setattr(bench_phases, "ChildGroup", Group)
    options = bench.Options(scenario="pipeline", instances=asked)
    async with bench.Bench(options, STACK, SCENARIOS["pipeline"])._running(bench_phases.PIPELINE, {}):
        pass
    assert started == [expected]
    assert bench_report.bench_settings(options, SCENARIOS["pipeline"], 10, 1)["instances_per_service"] == expected


async def test_a_latency_phase_alone_is_paced_at_the_rate_given_and_reports_no_pipeline(monkeypatch):
    phases = FakePhases().install(monkeypatch)
    options = bench.Options(scenario="portability", phases=["latency"], latency_rate=750.0)
    report = await bench.Bench(options, STACK, PORTABILITY).run()
    assert phases.paced_at == [750.0] and phases.raw_paced_at == []
    assert "pipeline" not in report and report["latency"]["target_rate"] == 750.0
    assert report["targets"]["events_per_second"]["measured"] is None


def test_a_latency_phase_with_nothing_to_pace_it_by_is_refused_before_anything_starts():
    with pytest.raises(ValueError, match="--latency-rate"):
        bench.run(bench.Options(scenario="portability", phases=["raw", "latency"]))


def test_each_scenario_of_a_run_has_a_stack_of_its_own_stopped_before_the_next_starts(monkeypatch):
    import contextlib

    events: list[str] = []

    @contextlib.contextmanager
    def stack_for_one(durable):
        events.append("start")
        yield STACK
        events.append("stop")

    async def report_of(self):
        events.append(self.scenario.name)
        return {"scenario": self.scenario.name, "targets": {}}

    monkeypatch.setattr(bench, "embedded_stack", stack_for_one)
    monkeypatch.setattr(bench.Bench, "run", report_of)
    report = bench.run(bench.Options(scenario="portability,workflow", phases=["raw"]))
    assert events == ["start", "portability", "stop", "start", "workflow", "stop"]
    assert set(report["scenarios"]) == {"portability", "workflow"}


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=lambda s: s.name)
def test_every_phase_database_name_fits_postgresqls_identifier_limit(scenario):
    for phase in ("pipeline", "pipeline-latency", "naive"):
        for definition in scenario.definitions():
            assert bench_wiring.database_name(scenario.name, phase, definition.name).startswith(f"bench_{scenario.name}_")
    with pytest.raises(ValueError, match="63 bytes"):
        bench_wiring.database_name(scenario.name, "pipeline-latency", "s" * 40)


def test_a_stack_that_is_not_durable_keeps_its_files_in_memory_when_there_is_room(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_setup, "MEMORY_DIRECTORY", tmp_path)
    monkeypatch.setattr(bench_setup, "MEMORY_NEEDED_BYTES", 1)
    assert bench_setup.data_directory(durable=False) == tmp_path


def test_a_durable_stack_keeps_its_files_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_setup, "MEMORY_DIRECTORY", tmp_path)
    monkeypatch.setattr(bench_setup, "MEMORY_NEEDED_BYTES", 1)
    assert bench_setup.data_directory(durable=True) is None


def test_without_room_in_memory_the_stack_keeps_its_files_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_setup, "MEMORY_DIRECTORY", tmp_path)
    monkeypatch.setattr(bench_setup, "MEMORY_NEEDED_BYTES", 1 << 62)
    assert bench_setup.data_directory(durable=False) is None
    monkeypatch.setattr(bench_setup, "MEMORY_DIRECTORY", tmp_path / "missing")
    monkeypatch.setattr(bench_setup, "MEMORY_NEEDED_BYTES", 1)
    assert bench_setup.data_directory(durable=False) is None
