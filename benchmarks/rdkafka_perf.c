/* A librdkafka throughput driver for benchmarks/broker_throughput.py.
 *
 *   rdkafka_perf produce BOOTSTRAP TOPIC COUNT SIZE [ACKS]  -> prints "seconds"
 *   rdkafka_perf consume BOOTSTRAP TOPIC COUNT        -> prints "seconds"
 *
 * Producer: acks=1, linger.ms=5, batch.size=1 MB, one partition (0), no compression.
 * Consumer: assign partition 0 from offset 0, read COUNT records, dequeued in batches.
 * Built by the benchmark with `cc -O2 rdkafka_perf.c -lrdkafka` (Debian: librdkafka-dev).
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s: %s\n", k, err);
        exit(2);
    }
}

static long delivered = 0, failed = 0;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk; (void)opaque;
    if (m->err) failed++; else delivered++;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s produce|consume BOOTSTRAP TOPIC COUNT [SIZE]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *bootstrap = argv[2], *topic = argv[3];
    long count = atol(argv[4]);
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    if (strcmp(mode, "produce") == 0) {
        int size = argc > 5 ? atoi(argv[5]) : 100;
        set(conf, "acks", argc > 6 ? argv[6] : "1");
        set(conf, "linger.ms", "5");
        set(conf, "batch.size", "1000000");
        set(conf, "queue.buffering.max.messages", "2000000");
        set(conf, "queue.buffering.max.kbytes", "2000000");
        set(conf, "enable.idempotence", "false");
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (!rk) { fprintf(stderr, "%s\n", err); return 1; }
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        char *payload = malloc(size);
        memset(payload, 'x', size);
        double t0 = now();
        for (long i = 0; i < count; i++) {
            while (rd_kafka_produce(rkt, 0, RD_KAFKA_MSG_F_COPY, payload, size, NULL, 0, NULL) == -1) {
                rd_kafka_poll(rk, 1);
            }
            if ((i & 0xFFFF) == 0) rd_kafka_poll(rk, 0);
        }
        rd_kafka_flush(rk, 120000);
        double dt = now() - t0;
        if (failed || delivered != count) { fprintf(stderr, "delivered %ld failed %ld\n", delivered, failed); return 1; }
        printf("%.6f\n", dt);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
    } else {
        set(conf, "group.id", "rdkafka-perf");
        set(conf, "enable.auto.commit", "false");
        set(conf, "fetch.max.bytes", "52428800");
        set(conf, "max.partition.fetch.bytes", "10485760");
        set(conf, "queued.max.messages.kbytes", "1000000");
        // Keep fetching while the app drains: with the default (100000) librdkafka pauses
        // the partition and re-checks only on its 1 s timer, which measures the client.
        set(conf, "queued.min.messages", "10000000");
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
        if (!rk) { fprintf(stderr, "%s\n", err); return 1; }
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = 0;
        rd_kafka_assign(rk, parts);
        // Batch dequeue: per-message polling costs librdkafka a queue lock per record and
        // would measure the client rather than the broker.
        rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
        static rd_kafka_message_t *batch[10000];
        long n = 0;
        double t0 = now();
        while (n < count) {
            ssize_t got = rd_kafka_consume_batch_queue(queue, 5000, batch, 10000);
            if (got <= 0) { fprintf(stderr, "stalled at %ld\n", n); return 1; }
            for (ssize_t i = 0; i < got; i++) {
                if (!batch[i]->err) n++;
                rd_kafka_message_destroy(batch[i]);
            }
        }
        printf("%.6f\n", now() - t0);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_queue_destroy(queue);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return 0;
}
