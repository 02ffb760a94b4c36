#!/usr/bin/env python3
"""A librdkafka (confluent-kafka) group member for kinflux-kafka's cross-client test.

member:    join GROUP on TOPIC, consume until EXPECT records were read (or TIMEOUT),
           commit the next offsets synchronously, leave the group, and print a JSON report
           {"assigned": [partitions], "consumed": {partition: [offsets]}} on stdout.
committed: print the group's committed offsets {partition: offset} for PARTITIONS.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["member", "committed"])
    p.add_argument("--brokers", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--expect", type=int, default=0)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--partitions", type=int, default=0)
    p.add_argument("--strategy", default="range,roundrobin")
    p.add_argument("--protocol", choices=["classic", "consumer"], default="classic")
    a = p.parse_args()

    conf = {
        "bootstrap.servers": a.brokers,
        "group.id": a.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "broker.address.family": "v4",
        "group.protocol": a.protocol,
    }
    if a.protocol == "classic":
        # The consumer protocol takes these from the broker; librdkafka rejects them there.
        conf.update(
            {
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 300,
                "partition.assignment.strategy": a.strategy,
            }
        )
    c = Consumer(conf)
    if a.mode == "committed":
        tps = [TopicPartition(a.topic, i) for i in range(a.partitions)]
        got = c.committed(tps, timeout=10)
        print(json.dumps({str(tp.partition): tp.offset for tp in got}))
        c.close()
        return 0

    assigned = []
    # The consumer protocol (KIP-848) is incremental, as cooperative-sticky.
    cooperative = "cooperative" in a.strategy or a.protocol == "consumer"

    def on_assign(consumer, partitions):
        # Eager: the whole assignment. Cooperative: only the partitions added.
        if cooperative:
            assigned[:] = sorted(set(assigned) | {tp.partition for tp in partitions})
        else:
            assigned[:] = sorted(tp.partition for tp in partitions)
        print(f"assigned {assigned}", file=sys.stderr, flush=True)

    def on_revoke(consumer, partitions):
        gone = {tp.partition for tp in partitions}
        if cooperative:
            assigned[:] = sorted(set(assigned) - gone)
        print(f"revoked {sorted(gone)}", file=sys.stderr, flush=True)

    c.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke)
    consumed = {}
    deadline = time.time() + a.timeout
    n = 0
    while time.time() < deadline and (a.expect == 0 or n < a.expect):
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            print(f"error {m.error()}", file=sys.stderr, flush=True)
            continue
        consumed.setdefault(str(m.partition()), []).append(m.offset())
        n += 1
    offsets = [
        TopicPartition(a.topic, int(p), offs[-1] + 1) for p, offs in consumed.items()
    ]
    if offsets:
        c.commit(offsets=offsets, asynchronous=False)
    report = {"assigned": list(assigned), "consumed": consumed}
    c.close()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
