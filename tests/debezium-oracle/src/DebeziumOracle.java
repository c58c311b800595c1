// Real Debezium, in-process through the Debezium Engine (no Kafka), writing each change
// record as one JSON line {"topic": ..., "key": ..., "value": ...} with the JSON
// converter and schemas.enable=false, as a Kafka Connect deployment would put them on
// the topic. A tombstone has "value": null.
//
//   java -cp 'classes:libs/*' DebeziumOracle CONFIG.properties OUT.jsonl [COUNT] [TIMEOUT_S]
//
// CONFIG holds the connector's and engine's properties (connector.class, database.*,
// slot.name, offset.storage.file.filename, ...). It stops after COUNT records (0: no
// limit), after TIMEOUT_S seconds, or when its standard input closes, whichever is
// first. Exit code 0 when stopped by count or stdin, 2 on timeout, 1 if the engine
// failed. The first line on stdout is "started <ms>": JVM start to engine running.
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;
import io.debezium.embedded.Connect;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;

import java.io.BufferedOutputStream;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

public final class DebeziumOracle {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: DebeziumOracle CONFIG.properties OUT.jsonl [COUNT] [TIMEOUT_S]");
            System.exit(64);
        }
        Properties props = new Properties();
        try (InputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        props.putIfAbsent("name", "debezium-oracle");
        long count = args.length > 2 ? Long.parseLong(args[2]) : 0;
        long timeoutS = args.length > 3 ? Long.parseLong(args[3]) : 600;

        JsonConverter keys = new JsonConverter();
        keys.configure(Map.of("schemas.enable", "false"), true);
        JsonConverter values = new JsonConverter();
        values.configure(Map.of("schemas.enable", "false"), false);
        ObjectMapper mapper = new ObjectMapper();

        OutputStream out = new BufferedOutputStream(new FileOutputStream(args[1], true));
        AtomicLong seen = new AtomicLong();
        AtomicReference<String> failure = new AtomicReference<>();
        CountDownLatch stop = new CountDownLatch(1);

        DebeziumEngine.ChangeConsumer<RecordChangeEvent<SourceRecord>> consumer =
            (List<RecordChangeEvent<SourceRecord>> records,
             DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer) -> {
                for (RecordChangeEvent<SourceRecord> event : records) {
                    SourceRecord r = event.record();
                    byte[] k = keys.fromConnectData(r.topic(), r.keySchema(), r.key());
                    byte[] v = values.fromConnectData(r.topic(), r.valueSchema(), r.value());
                    StringBuilder line = new StringBuilder();
                    line.append("{\"topic\":").append(quote(mapper, r.topic()))
                        .append(",\"key\":").append(raw(k))
                        .append(",\"value\":").append(raw(v)).append("}\n");
                    // One write per whole line: a reader never sees half of one once
                    // the batch is flushed below.
                    write(out, line.toString());
                    committer.markProcessed(event);
                    if (count > 0 && seen.incrementAndGet() >= count) {
                        stop.countDown();
                    }
                }
                write(out, "");
                committer.markBatchFinished();
            };

        long t0 = ManagementFactory.getRuntimeMXBean().getStartTime();
        DebeziumEngine<RecordChangeEvent<SourceRecord>> engine =
            DebeziumEngine.create(ChangeEventFormat.of(Connect.class))
                .using(props)
                .notifying(consumer)
                .using(new DebeziumEngine.ConnectorCallback() {
                    @Override
                    public void taskStarted() {
                        System.out.println("started " + (System.currentTimeMillis() - t0));
                        System.out.flush();
                    }
                })
                .using((success, message, error) -> {
                    if (!success) {
                        failure.set(message + (error == null ? "" : ": " + error));
                    }
                    stop.countDown();
                })
                .build();
        ExecutorService executor = Executors.newSingleThreadExecutor();
        executor.execute(engine);

        // The caller closing our stdin (or dying) stops us.
        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // discard
                }
            } catch (IOException e) {
                // treated as closed
            }
            stop.countDown();
        });
        stdin.setDaemon(true);
        stdin.start();

        boolean stopped = stop.await(timeoutS, TimeUnit.SECONDS);
        engine.close();
        executor.shutdown();
        executor.awaitTermination(30, TimeUnit.SECONDS);
        out.close();
        if (failure.get() != null) {
            System.err.println("debezium engine failed: " + failure.get());
            System.exit(1);
        }
        System.exit(stopped ? 0 : 2);
    }

    /** Writes `text` and flushes: the engine's consumer may not throw IOException. */
    private static void write(OutputStream out, String text) {
        try {
            out.write(text.getBytes(StandardCharsets.UTF_8));
            if (text.isEmpty()) {
                out.flush();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String raw(byte[] json) {
        return json == null ? "null" : new String(json, StandardCharsets.UTF_8);
    }

    private static String quote(ObjectMapper mapper, String s) {
        try {
            return mapper.writeValueAsString(s);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
