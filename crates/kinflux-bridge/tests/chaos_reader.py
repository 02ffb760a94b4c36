#!/usr/bin/env python3
"""The chaos run's independent reader (librdkafka, through confluent-kafka).

Once a second it asks the group's coordinator for the committed offsets (OffsetFetch: it
never joins the group), and for every partition checks the last committed record (offset
C-1) and one at random below it: a good record must be in InfluxDB, a malformed one in
the dead-letter topic (its kinflux.source.partition/offset headers). Nothing is ever
deleted from either, so a record missing when checked was missing when the offset was
committed: a commit ran ahead. Checks while InfluxDB is down are counted as skipped.

usage: chaos_reader.py BROKERS GROUP TOPIC PARTITIONS DLQ_TOPIC INFLUX_URL DB OUT_JSON
Runs until SIGTERM, then writes its summary to OUT_JSON.
"""

import json
import random
import signal
import sys
import time
import urllib.parse
import urllib.request

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

BAD_PREFIX = b"not line protocol"

(brokers, group, topic, partitions, dlq_topic, influx_url, db, out) = sys.argv[1:9]
partitions = int(partitions)
stopping = False


def stop(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)


def consumer(group_id, **extra):
    conf = {
        "bootstrap.servers": brokers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "socket.timeout.ms": 5000,
    }
    conf.update(extra)
    return Consumer(conf)


offsets = consumer(group)  # only OffsetFetch: it never subscribes, so never joins
fetcher = consumer(group + "_chaos_reader", **{"fetch.wait.max.ms": 10})
dead_reader = consumer(group + "_chaos_dlq", **{"fetch.wait.max.ms": 10})
dead_partitions = (
    dead_reader.list_topics(dlq_topic, timeout=10).topics[dlq_topic].partitions.keys()
)
dead_reader.assign([TopicPartition(dlq_topic, p, OFFSET_BEGINNING) for p in dead_partitions])
dead = set()


def drain_dead_letters():
    """Reads the dead-letter topic to its current end."""
    idle = 0
    while idle < 3:
        msg = dead_reader.poll(0.2)
        if msg is None or msg.error():
            idle += 1
            continue
        idle = 0
        h = dict(msg.headers() or [])
        try:
            dead.add(
                (
                    int(h["kinflux.source.partition"]),
                    int(h["kinflux.source.offset"]),
                )
            )
        except (KeyError, ValueError):
            pass


def record_at(partition, offset):
    fetcher.assign([TopicPartition(topic, partition, offset)])
    deadline = time.time() + 10
    while time.time() < deadline:
        msg = fetcher.poll(0.5)
        if msg is not None and not msg.error() and msg.offset() == offset:
            return msg.value()
    return None


def in_influx(partition, value):
    """Whether the point of this good record is in InfluxDB; raises when it is down."""
    timestamp = value.split()[-1].decode()
    q = (
        f'SELECT count(v) FROM "fault" WHERE time = {timestamp} '
        f"AND \"partition\" = '{partition}'"
    )
    url = f"{influx_url}/query?" + urllib.parse.urlencode({"db": db, "q": q})
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.load(answer)
    series = body["results"][0].get("series")
    return bool(series) and series[0]["values"][0][1] >= 1


summary = {
    "samples": 0,
    "checks": 0,
    "good_checked": 0,
    "bad_checked": 0,
    "skipped_influx_down": 0,
    "skipped_unreadable": 0,
    "violations": [],
    "committed_last": {},
    "commit_advances": 0,
}
last = {}
started = time.time()
while not stopping:
    t = time.time()
    try:
        committed = offsets.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=5
        )
    except Exception:  # a coordinator moving: try again
        time.sleep(1)
        continue
    summary["samples"] += 1
    for tp in committed:
        c = tp.offset
        if c <= 0:
            continue
        if c > last.get(tp.partition, -1):
            summary["commit_advances"] += 1
        last[tp.partition] = c
        for offset in {c - 1, random.randrange(0, c)}:
            value = record_at(tp.partition, offset)
            if value is None:
                summary["skipped_unreadable"] += 1
                continue
            summary["checks"] += 1
            if value.startswith(BAD_PREFIX):
                summary["bad_checked"] += 1
                if (tp.partition, offset) not in dead:
                    drain_dead_letters()
                if (tp.partition, offset) not in dead:
                    summary["violations"].append(
                        {"at": round(t - started, 1), "partition": tp.partition,
                         "offset": offset, "committed": c, "missing_from": "dead-letter topic"}
                    )
            else:
                try:
                    present = in_influx(tp.partition, value)
                except Exception:
                    summary["skipped_influx_down"] += 1
                    summary["checks"] -= 1
                    continue
                summary["good_checked"] += 1
                if not present:
                    summary["violations"].append(
                        {"at": round(t - started, 1), "partition": tp.partition,
                         "offset": offset, "committed": c, "missing_from": "InfluxDB"}
                    )
    time.sleep(max(0.0, 1.0 - (time.time() - t)))

summary["committed_last"] = {str(p): c for p, c in sorted(last.items())}
summary["seconds"] = round(time.time() - started, 1)
with open(out, "w") as f:
    json.dump(summary, f)
for c in (offsets, fetcher, dead_reader):
    c.close()
