// Java's own producer for kinflux-kafka's fetch tests, run as a single-file program:
//   java -cp "$KINFLUX_KAFKA_HOME/libs/*" KinfluxProducer.java MODE BROKERS TOPIC CODEC COUNT
// plain:        COUNT records to partition 0 with compression.type CODEC: key "k{i}", value
//               "java-{codec}-{i}-xxx..." (a few hundred bytes), header "i" = i.
// transactions: two transactional producers interleave COUNT rounds on partition 0;
//               producer "a" commits, producer "b" aborts; the log ends in a commit marker.
// Prints one JSON line: {"committed": [values in offset order], "aborted": [values]}.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class KinfluxProducer {
    static KafkaProducer<String, String> producer(String brokers, String codec, String txnId) {
        Properties p = new Properties();
        p.put("bootstrap.servers", brokers);
        p.put("compression.type", codec);
        p.put("linger.ms", "20");
        p.put("batch.size", "262144");
        p.put("acks", "all");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        if (txnId != null) {
            p.put("transactional.id", txnId);
        }
        return new KafkaProducer<>(p);
    }

    static String json(List<String> committed, List<String> aborted) {
        StringBuilder sb = new StringBuilder("{\"committed\": [");
        for (int i = 0; i < committed.size(); i++) {
            sb.append(i == 0 ? "" : ", ").append('"').append(committed.get(i)).append('"');
        }
        sb.append("], \"aborted\": [");
        for (int i = 0; i < aborted.size(); i++) {
            sb.append(i == 0 ? "" : ", ").append('"').append(aborted.get(i)).append('"');
        }
        return sb.append("]}").toString();
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0], brokers = args[1], topic = args[2], codec = args[3];
        int count = Integer.parseInt(args[4]);
        List<String> committed = new ArrayList<>(), aborted = new ArrayList<>();
        if (mode.equals("plain")) {
            try (KafkaProducer<String, String> p = producer(brokers, codec, null)) {
                for (int i = 0; i < count; i++) {
                    String v = "java-" + codec + "-" + i + "-" + "x".repeat(200 + i % 50);
                    ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "k" + i, v);
                    r.headers().add("i", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    p.send(r);
                    committed.add(v);
                }
                p.flush();
            }
        } else {
            try (KafkaProducer<String, String> a = producer(brokers, codec, topic + "-ja");
                 KafkaProducer<String, String> b = producer(brokers, codec, topic + "-jb")) {
                a.initTransactions();
                b.initTransactions();
                for (int t = 0; t < count; t++) {
                    b.beginTransaction();
                    for (int i = 0; i < 3; i++) {
                        String v = "b-" + t + "-" + i;
                        b.send(new ProducerRecord<>(topic, 0, null, v));
                        aborted.add(v);
                    }
                    b.flush();
                    a.beginTransaction();
                    for (int i = 0; i < 2 + t % 3; i++) {
                        String v = "a-" + t + "-" + i;
                        a.send(new ProducerRecord<>(topic, 0, null, v));
                        committed.add(v);
                    }
                    a.flush();
                    b.abortTransaction();
                    a.commitTransaction();
                }
            }
        }
        System.out.println(json(committed, aborted));
    }
}
