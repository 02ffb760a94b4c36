#!/usr/bin/env python3
"""Fills TOPIC with COUNT records through librdkafka (confluent-kafka), compressed with
CODEC, spread evenly over the topic's partitions, and prints {"records": n, "seconds": s}.

The values are line-protocol text of VALUE_BYTES bytes with varying numbers, so that each
codec compresses them about as much as it would real metrics (a run of one repeated byte
would flatter every codec)."""
import argparse
import json
import random
import time

from confluent_kafka import Producer


def value(j: int, size: int, rng: random.Random) -> bytes:
    head = (
        f"garden,sensor=s{j % 1000},zone=z{j % 8} "
        f"moisture={rng.random():.6f},temp={rng.uniform(-10, 40):.3f},seq={j}i"
    )
    ts = f" {1_700_000_000_000_000_000 + j * 1_000_000}"
    # Pad to the asked size inside a string field, so the value stays valid line protocol.
    pad = size - len(head) - len(ts) - len(',note=""')
    if pad > 0:
        note = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(pad))
        head += f',note="{note}"'
    return (head + ts).encode()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--value-bytes", type=int, default=200)
    p.add_argument("--codec", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    a = p.parse_args()
    rng = random.Random(42)
    prod = Producer(
        {
            "bootstrap.servers": a.brokers,
            "compression.type": a.codec,
            "linger.ms": 20,
            "batch.size": 512 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            "broker.address.family": "v4",
        }
    )
    start = time.perf_counter()
    failed = []

    def report(err, _msg):
        if err is not None:
            failed.append(str(err))

    for j in range(a.count):
        v = value(j, a.value_bytes, rng)
        while True:
            try:
                prod.produce(
                    a.topic,
                    value=v,
                    key=f"sensor-{j % 1000}".encode(),
                    partition=j % a.partitions,
                    timestamp=1_700_000_000_000 + j,
                    on_delivery=report,
                )
                break
            except BufferError:
                prod.poll(0.05)
        if j % 10_000 == 0:
            prod.poll(0)
    left = prod.flush(120)
    if left or failed:
        raise SystemExit(f"{left} records unsent, {len(failed)} failed: {failed[:3]}")
    print(json.dumps({"records": a.count, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
