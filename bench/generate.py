"""Generator throughput: events per CPU-second for generate-and-encode, catalog build time, worker memory.

    python bench/generate.py [--seconds 10] [--block 4096]

Throughput is measured in CPU time of this process (events per core-second), so it means the same on a
busy machine as on a quiet one; wall-clock figures are printed beside it.
"""

from __future__ import annotations

import argparse
import resource
import time

import psutil

from clickstream.workers.generator import EventGenerator
from clickstream.workers.model import ModelConfig
from clickstream.workers.places import load_cities_in_child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--block", type=int, default=4096, help="rows per render call (a producer uses 4096)")
    parser.add_argument("--max-users", type=int, default=100_000)
    parser.add_argument("--max-products", type=int, default=50_000)
    args = parser.parse_args()

    process = psutil.Process()
    config = ModelConfig(max_users=args.max_users, max_products=args.max_products)
    cities = load_cities_in_child(config)  # as the supervisor does: GeoNames parsing stays out of this process
    rss_before = process.memory_info().rss
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    generator = EventGenerator(config, cities=cities)
    build_cpu, build_wall = time.process_time() - started_cpu, time.perf_counter() - started_wall

    buffer = generator.new_buffer(args.block)
    position = 0
    generator.render(position, args.block, buffer)  # first epoch: warm-up
    position += args.block
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    while time.perf_counter() - started_wall < args.seconds:
        generator.render(position, args.block, buffer)
        position += args.block
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
    events = position - args.block
    memory = process.memory_full_info()
    end_ms = int(generator.behaviour.events(position, 1).time_ms[0])
    days = (end_ms - generator.start_ms) / 86_400_000

    rows = [
        ("catalog + encoder build", f"{build_cpu:.2f} s CPU ({build_wall:.2f} s wall)",
         f"{config.max_users:,} users, {config.max_products:,} products"),
        ("generate + encode", f"{events / cpu:,.0f} events/s per core",
         f"{events:,} events in {cpu:.1f} s CPU; {events / wall:,.0f}/s wall"),
        ("event time covered", f"{days:.1f} days",
         f"by {position:,} events; {generator.behaviour.epoch_ms / 3.6e6:.0f} h epochs; "
         f"A(t) there {generator.events_per_second(end_ms):.2f} events/s"),
        ("bytes per event", f"{generator.row_bytes} B",
         f"{events * generator.row_bytes / cpu / 1e6:,.0f} MB/s per core"),
        ("worker memory", f"RSS {memory.rss / 2**20:.0f} MiB, USS {memory.uss / 2**20:.0f} MiB",
         f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
         f"{(memory.rss - rss_before) / 2**20:.0f} MiB for the generator"),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'what':<{width[0]}}  {'measured':<{width[1]}}  notes")
    print("-" * (sum(width) + 10))
    for what, value, note in rows:
        print(f"{what:<{width[0]}}  {value:<{width[1]}}  {note}")


if __name__ == "__main__":
    main()
