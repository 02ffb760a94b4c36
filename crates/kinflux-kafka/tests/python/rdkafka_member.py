#!/usr/bin/env python3
"""A librdkafka (confluent-kafka) group member for kinflux-kafka's cross-client test.

member:    join GROUP on TOPIC, print "owns [partitions]" on stderr after every change of
           the assignment, consume until EXPECT records were read (or TIMEOUT), commit the
           next offsets synchronously (with --linger true: print "committed" on stderr, then
           stay in the group until stdin closes), leave the group, and print a JSON report
           {"assigned": [partitions], "consumed": {partition: [offsets]}} on stdout.
committed: print the group's committed offsets {partition: offset} for PARTITIONS.

The same protocol as tests/java/GroupMember.java.
"""
import argparse
import json
import sys
import threading
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
    p.add_argument("--linger", choices=["true", "false"], default="false")
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

    owned = set()

    # Eager assignors revoke everything, then assign everything; the cooperative one and the
    # consumer protocol (KIP-848) pass only what moves. Tracking the difference serves all.
    def on_assign(consumer, partitions):
        owned.update(tp.partition for tp in partitions)
        print(f"owns {sorted(owned)}", file=sys.stderr, flush=True)

    def on_revoke(consumer, partitions):
        owned.difference_update(tp.partition for tp in partitions)
        print(f"owns {sorted(owned)}", file=sys.stderr, flush=True)

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
    if a.linger == "true":
        # Stay in the group, polling, until stdin closes: the test decides when members leave.
        print("committed", file=sys.stderr, flush=True)
        released = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), released.set()), daemon=True).start()
        while not released.is_set():
            m = c.poll(0.2)
            if m is not None and not m.error():
                consumed.setdefault(str(m.partition()), []).append(m.offset())
    report = {"assigned": sorted(owned), "consumed": consumed}
    c.close()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
