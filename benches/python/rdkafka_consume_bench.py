#!/usr/bin/env python3
"""Consumes COUNT records of TOPIC with librdkafka (confluent-kafka) in a fresh group and
prints {"records": n, "bytes": key+value bytes, "seconds": from subscribe to last record,
"cpu_seconds": process CPU time meanwhile, librdkafka's threads included, "first_seconds":
from subscribe to the first record}."""
import argparse
import json
import time

from confluent_kafka import Consumer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=300.0)
    a = p.parse_args()
    c = Consumer(
        {
            "bootstrap.servers": a.brokers,
            "group.id": a.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "broker.address.family": "v4",
            # librdkafka tuned for a backlog, as kinflux-kafka is by default (fetch_max_wait
            # 100 ms, up to 50 MiB a fetch): with its defaults it stops fetching a partition
            # once 100,000 messages wait in its queue and then backs off for a whole second
            # (fetch.queue.backoff.ms), which cut its rate here from about 640,000 to
            # 180,000 records/s while its CPU sat mostly idle.
            "fetch.wait.max.ms": 100,
            "fetch.max.bytes": 52428800,
            "max.partition.fetch.bytes": 16777216,
            "queued.max.messages.kbytes": 262144,
            "queued.min.messages": 1000000,
            "fetch.queue.backoff.ms": 0,
        }
    )
    start = time.perf_counter()
    cpu_start = time.process_time()
    c.subscribe([a.topic])
    n = 0
    size = 0
    first = None
    deadline = time.time() + a.timeout
    while n < a.count and time.time() < deadline:
        for m in c.consume(num_messages=10000, timeout=0.5):
            if m.error():
                continue
            if first is None:
                first = time.perf_counter() - start
            n += 1
            k = m.key()
            v = m.value()
            size += (len(k) if k else 0) + (len(v) if v else 0)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    c.close()
    print(json.dumps({"records": n, "bytes": size, "seconds": seconds, "cpu_seconds": cpu_seconds, "first_seconds": first}))


if __name__ == "__main__":
    main()
