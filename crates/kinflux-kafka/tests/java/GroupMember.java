// A group member on Kafka's own Java client, for kinflux-kafka's cross-client tests. Run as
// a single-file program on the broker's classpath:
//
//   java -cp "$KINFLUX_KAFKA_HOME/libs/*" GroupMember.java member --brokers B --group G \
//        --topic T --strategy range|roundrobin|cooperative-sticky --expect N --timeout S \
//        [--linger true]
//   java -cp "$KINFLUX_KAFKA_HOME/libs/*" GroupMember.java committed --brokers B --group G \
//        --topic T --partitions P
//
// member:    joins G with the classic protocol and the given assignor, prints "owns [..]" on
//            stderr after every change of its assignment, reads until N records came (or S
//            seconds passed), commits the next offsets synchronously (with --linger: prints
//            "committed" on stderr, then stays in the group until stdin closes), leaves the
//            group, and prints {"assigned": [..], "consumed": {"partition": [offsets]}} on
//            stdout.
// committed: prints the group's committed offsets {"partition": offset} (-1: none).
// The same protocol as tests/python/rdkafka_member.py.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupMember {
    public static void main(String[] argv) {
        String mode = argv[0];
        Map<String, String> a = new HashMap<>();
        for (int i = 1; i + 1 < argv.length; i += 2) {
            a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        String topic = a.get("topic");
        Properties p = new Properties();
        p.put("bootstrap.servers", a.get("brokers"));
        p.put("group.id", a.get("group"));
        p.put("group.protocol", "classic");
        p.put("client.id", "java-member");
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("session.timeout.ms", "6000");
        p.put("heartbeat.interval.ms", "300");
        p.put("max.poll.interval.ms", "30000");
        p.put("partition.assignment.strategy", assignor(a.getOrDefault("strategy", "range")));
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            if (mode.equals("committed")) {
                Set<TopicPartition> tps = new HashSet<>();
                int n = Integer.parseInt(a.get("partitions"));
                for (int i = 0; i < n; i++) {
                    tps.add(new TopicPartition(topic, i));
                }
                Map<TopicPartition, OffsetAndMetadata> got = c.committed(tps, Duration.ofSeconds(10));
                Map<Integer, Long> out = new TreeMap<>();
                for (TopicPartition tp : tps) {
                    OffsetAndMetadata o = got.get(tp);
                    out.put(tp.partition(), o == null ? -1L : o.offset());
                }
                StringBuilder json = new StringBuilder("{");
                for (Map.Entry<Integer, Long> e : out.entrySet()) {
                    if (json.length() > 1) json.append(", ");
                    json.append('"').append(e.getKey()).append("\": ").append(e.getValue());
                }
                System.out.println(json.append('}'));
                return;
            }
            member(c, topic, Integer.parseInt(a.getOrDefault("expect", "0")),
                Double.parseDouble(a.getOrDefault("timeout", "30")),
                Boolean.parseBoolean(a.getOrDefault("linger", "false")));
        }
    }

    static String assignor(String strategy) {
        switch (strategy) {
            case "range": return "org.apache.kafka.clients.consumer.RangeAssignor";
            case "roundrobin": return "org.apache.kafka.clients.consumer.RoundRobinAssignor";
            case "cooperative-sticky": return "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
            default: throw new IllegalArgumentException("strategy " + strategy);
        }
    }

    static void member(KafkaConsumer<byte[], byte[]> c, String topic, int expect, double timeout,
            boolean linger) {
        Set<Integer> owned = new TreeSet<>();
        c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            // Eager assignors revoke everything, then assign everything; the cooperative one
            // passes only what moves. Tracking the difference serves both.
            public void onPartitionsRevoked(Collection<TopicPartition> tps) {
                for (TopicPartition tp : tps) owned.remove(tp.partition());
                System.err.println("owns " + owned);
            }

            public void onPartitionsAssigned(Collection<TopicPartition> tps) {
                for (TopicPartition tp : tps) owned.add(tp.partition());
                System.err.println("owns " + owned);
            }
        });
        Map<Integer, List<Long>> consumed = new TreeMap<>();
        long deadline = System.nanoTime() + (long) (timeout * 1e9);
        int n = 0;
        while (System.nanoTime() < deadline && (expect == 0 || n < expect)) {
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                consumed.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.offset());
                n++;
            }
        }
        Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
        for (Map.Entry<Integer, List<Long>> e : consumed.entrySet()) {
            List<Long> offs = e.getValue();
            next.put(new TopicPartition(topic, e.getKey()), new OffsetAndMetadata(offs.get(offs.size() - 1) + 1));
        }
        if (!next.isEmpty()) {
            c.commitSync(next);
        }
        if (linger) {
            // Stay in the group, polling, until stdin closes: the test decides when members
            // leave.
            System.err.println("committed");
            AtomicBoolean released = new AtomicBoolean();
            Thread stdin = new Thread(() -> {
                try {
                    System.in.readAllBytes();
                } catch (java.io.IOException e) {
                    // A closed stdin releases as well.
                }
                released.set(true);
            });
            stdin.setDaemon(true);
            stdin.start();
            while (!released.get()) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    consumed.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.offset());
                }
            }
        }
        StringBuilder json = new StringBuilder("{\"assigned\": ").append(owned).append(", \"consumed\": {");
        boolean first = true;
        for (Map.Entry<Integer, List<Long>> e : consumed.entrySet()) {
            if (!first) json.append(", ");
            first = false;
            json.append('"').append(e.getKey()).append("\": ").append(e.getValue());
        }
        System.out.println(json.append("}}"));
    }
}
