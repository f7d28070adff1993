"""The pacer against a fake clock: absolute deadlines, batches per tick, bounded catch-up."""

from __future__ import annotations

from clickstream.server.pacing import Pacer


def run(pacer: Pacer, until_s: float) -> list[int]:
    """What stream.py does: send what is due, sleep to the next wake-up, and a last tick at the end."""
    sent, now = [], pacer.start_s
    while True:
        due = pacer.due(now)
        pacer.record(due)
        sent.append(due)
        if now >= until_s:
            return sent
        now = min(pacer.next_wake_s(now), until_s)


def test_first_event_goes_out_at_once() -> None:
    assert Pacer(10, start_s=100.0).due(100.0) == 1


def test_exact_count_over_time_at_every_rate() -> None:
    for rate in (1, 10, 999, 1000, 50_000):
        pacer = Pacer(rate, start_s=0.0, tick_s=0.01)
        run(pacer, until_s=10.0 - 1e-6)
        assert pacer.sent == rate * 10, rate  # events due at 0, 1/rate, ... < 10 s


def test_batches_per_tick_not_per_event() -> None:
    pacer = Pacer(50_000, start_s=0.0, tick_s=0.01)
    batches = run(pacer, until_s=1.0)
    assert len(batches) <= 102  # about one wake-up per 10 ms tick
    assert max(batches) <= 501


def test_low_rates_sleep_until_the_next_event() -> None:
    pacer = Pacer(2, start_s=0.0, tick_s=0.01)
    pacer.record(pacer.due(0.0))
    assert pacer.next_wake_s(0.0) == 0.5


def test_late_ticks_catch_up_without_drift() -> None:
    pacer = Pacer(1000, start_s=0.0, tick_s=0.01)
    pacer.record(pacer.due(0.0))
    pacer.record(pacer.due(0.3))  # a 300 ms stall: the backlog is sent at once
    assert pacer.sent == 301


def test_a_long_stall_slips_the_schedule_instead_of_flooding() -> None:
    pacer = Pacer(1000, start_s=0.0, tick_s=0.01, max_burst_s=0.5)
    pacer.record(pacer.due(0.0))
    burst = pacer.due(10.0)
    assert burst == 500
    pacer.record(burst)
    assert pacer.due(10.0) == 0
    assert abs(pacer.event_time_s(pacer.sent) - 10.0) < 0.002  # event times stay near the clock


def test_a_short_stream_ends_when_its_last_event_is_due_not_a_tick_later() -> None:
    pacer = Pacer(50_000, start_s=0.0, tick_s=0.02)
    pacer.record(pacer.due(0.0))
    assert pacer.next_wake_s(0.0, last_index=99) == 99 / 50_000
    assert pacer.next_wake_s(0.0) == 0.02
