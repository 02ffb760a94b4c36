#!/usr/bin/env python3
"""A librdkafka (confluent-kafka) producer for kinflux-kafka's fetch tests.

plain:        produce COUNT records to partition 0 of TOPIC with compression.type CODEC:
              key "k{i}", value "rdkafka-{codec}-{i}" (padded to a few hundred bytes so the
              batches really compress), header "i" = str(i).
transactions: two transactional producers write interleaved transactions to partition 0;
              producer "a" commits, producer "b" aborts, and the log ends in a commit
              marker. Values are "a-{txn}-{i}" and "b-{txn}-{i}", or with
              --line-protocol "txn,producer=a,txn=T v=Ii <time>" lines.
open:         producer "b" begins a transaction, writes COUNT records and flushes, then
              waits for a line on stdin and aborts it (the test reads while it is open).

Prints one JSON line: {"committed": [values in offset order], "aborted": [values]}.
"""
import argparse
import json
import sys

from confluent_kafka import Producer


def producer(brokers, extra):
    conf = {
        "bootstrap.servers": brokers,
        "broker.address.family": "v4",
        "linger.ms": 20,
        "batch.num.messages": 1000,
    }
    conf.update(extra)
    return Producer(conf)


def check(err, _msg):
    if err is not None:
        sys.exit(f"delivery failed: {err}")


def plain(a):
    p = producer(a.brokers, {"compression.type": a.codec, "acks": "all"})
    values = []
    for i in range(a.count):
        v = f"rdkafka-{a.codec}-{i}-" + "x" * (200 + i % 50)
        p.produce(a.topic, value=v, key=f"k{i}", partition=0, headers=[("i", str(i))],
                  on_delivery=check)
        values.append(v)
        p.poll(0)
    if p.flush(30) != 0:
        sys.exit("flush timed out")
    return {"committed": values, "aborted": []}


def transactional(a, name):
    p = producer(a.brokers, {"transactional.id": f"{a.topic}-{name}",
                             "compression.type": a.codec})
    p.init_transactions(30)
    return p


def value(a, who, txn, i):
    if a.line_protocol:
        return f"txn,producer={who},txn={txn} v={i}i {1600000000000000000 + txn * 1000 + i}"
    return f"{who}-{txn}-{i}"


def transactions(a):
    pa = transactional(a, "a")
    pb = transactional(a, "b")
    committed, aborted = [], []
    for txn in range(a.count):
        pb.begin_transaction()
        for i in range(3):
            v = value(a, "b", txn, i)
            pb.produce(a.topic, value=v, partition=0, on_delivery=check)
            aborted.append(v)
        pb.flush(30)
        pa.begin_transaction()
        for i in range(2 + txn % 3):
            v = value(a, "a", txn, i)
            pa.produce(a.topic, value=v, partition=0, on_delivery=check)
            committed.append(v)
        pa.flush(30)
        pb.abort_transaction(30)
        pa.commit_transaction(30)
    return {"committed": committed, "aborted": aborted}


def open_transaction(a):
    pb = transactional(a, "b")
    pb.begin_transaction()
    values = []
    for i in range(a.count):
        v = f"open-{i}"
        pb.produce(a.topic, value=v, partition=0, on_delivery=check)
        values.append(v)
    pb.flush(30)
    print(json.dumps({"committed": [], "aborted": values}), flush=True)
    sys.stdin.readline()
    pb.abort_transaction(30)
    return None


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["plain", "transactions", "open"])
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--codec", default="none")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--line-protocol", action="store_true",
                   help="transactions: values are line protocol (measurement txn)")
    a = p.parse_args()
    if a.mode == "plain":
        out = plain(a)
    elif a.mode == "transactions":
        out = transactions(a)
    else:
        out = open_transaction(a)
    if out is not None:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
