/*
 * bare.c - the bare pipeline: the limit of this machine for one hop.
 *
 * `make bench` (bench/run.py) runs it to measure what RabbitMQ and
 * PostgreSQL allow on this machine with no business logic at all:
 * consume -> INSERT one row, committed -> publish one persistent message
 * with a publisher confirm -> ack. Two modes:
 *   per-message  one COMMIT (one WAL flush) and one ack per message;
 *   --batched    everything delivered so far (up to the prefetch) in one
 *                transaction, one confirm wait and one multiple-ack.
 * The published message goes to the delivery's reply_to (default
 * exchange; the same place the workers' replies go) or else to --out.
 *
 * Written straight on librabbitmq-c 0.11 and libpq, not over the
 * runtime, so that it measures the servers and not our code. One channel
 * carries deliveries, publishes and confirms, as in the workers.
 * Not production code: any unexpected frame or error ends the process.
 *
 *     bare [--batched] [--queue mfa.login] [--out bench.bare.out]
 *          [--prefetch 100] [--table bench.bare_hop]
 * Environment: MFA_AMQP_URL, BENCH_PG_CONNINFO (libpq conninfo).
 * On SIGTERM/SIGINT: finishes the message(s) in hand, prints one JSON line
 * (messages, CPU seconds, batches) and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <libpq-fe.h>

#define BARE_CH 1
#define BARE_MAX_BATCH 10000

struct bare_msg {
    uint64_t tag;
    char *id;
    char *reply_to;
    char *body;
    size_t body_len;
};

struct bare {
    amqp_connection_state_t conn;
    PGconn *pg;
    const char *queue;
    const char *out;
    const char *table;
    int batched;
    int prefetch;
    /* deliveries read but not yet handled (a ring would be fancier;
     * a compacted array is enough at this size) */
    struct bare_msg *q;
    int nq;
    /* publisher confirms */
    uint64_t next_seq;
    uint64_t *wait_seq;
    char *wait_ok;
    int nwait;
    long long handled;
    long long batches;
    /* where the time goes (seconds): SQL incl. COMMIT, confirm waits */
    double t_sql;
    double t_confirm;
};

static volatile sig_atomic_t bare_stop;

static double
bare_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
bare_on_signal(int sig)
{
    (void)sig;
    bare_stop = 1;
}

static void
bare_die(const char *what, const char *why)
{
    fprintf(stderr, "bare: %s: %s\n", what, why);
    exit(1);
}

static void
bare_amqp_ok(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        bare_die(what, amqp_error_string2(r.library_error));
    bare_die(what, "broker refused");
}

static char *
bare_dup(amqp_bytes_t b)
{
    char *s = malloc(b.len + 1);

    if (s == NULL)
        bare_die("malloc", strerror(errno));
    memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    return s;
}

static void
bare_connect(struct bare *b, const char *url)
{
    struct amqp_connection_info ci;
    amqp_socket_t *sock;
    char *u = strdup(url);
    amqp_table_entry_t cap[1];
    amqp_table_t props;

    if (u == NULL || amqp_parse_url(u, &ci) != AMQP_STATUS_OK)
        bare_die("MFA_AMQP_URL", "not an amqp:// URL");
    b->conn = amqp_new_connection();
    sock = amqp_tcp_socket_new(b->conn);
    if (sock == NULL || amqp_socket_open(sock, ci.host, ci.port) != 0)
        bare_die("amqp", "cannot connect");
    cap[0].key = amqp_cstring_bytes("connection_name");
    cap[0].value.kind = AMQP_FIELD_KIND_UTF8;
    cap[0].value.value.bytes = amqp_cstring_bytes("bench-bare");
    props.num_entries = 1;
    props.entries = cap;
    bare_amqp_ok(amqp_login_with_properties(b->conn, ci.vhost, 0, 131072, 0,
                                            &props, AMQP_SASL_METHOD_PLAIN,
                                            ci.user, ci.password),
                 "login");
    amqp_channel_open(b->conn, BARE_CH);
    bare_amqp_ok(amqp_get_rpc_reply(b->conn), "channel.open");
    amqp_confirm_select(b->conn, BARE_CH);
    bare_amqp_ok(amqp_get_rpc_reply(b->conn), "confirm.select");
    /* The output queue, for deliveries without reply_to. */
    amqp_queue_declare(b->conn, BARE_CH, amqp_cstring_bytes(b->out), 0, 1, 0, 0,
                       amqp_empty_table);
    bare_amqp_ok(amqp_get_rpc_reply(b->conn), "queue.declare out");
    amqp_basic_qos(b->conn, BARE_CH, 0, (uint16_t)b->prefetch, 0);
    bare_amqp_ok(amqp_get_rpc_reply(b->conn), "basic.qos");
    amqp_basic_consume(b->conn, BARE_CH, amqp_cstring_bytes(b->queue),
                       amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    bare_amqp_ok(amqp_get_rpc_reply(b->conn), "basic.consume");
    free(u);
}

static void
bare_on_deliver(struct bare *b, const amqp_basic_deliver_t *d)
{
    amqp_message_t m;
    struct bare_msg *x;

    bare_amqp_ok(amqp_read_message(b->conn, BARE_CH, &m, 0), "read message");
    if (b->nq >= BARE_MAX_BATCH)
        bare_die("deliveries", "more than the prefetch allows");
    x = &b->q[b->nq++];
    x->tag = d->delivery_tag;
    x->id = m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG
                ? bare_dup(m.properties.message_id)
                : strdup("");
    x->reply_to = m.properties._flags & AMQP_BASIC_REPLY_TO_FLAG
                      ? bare_dup(m.properties.reply_to)
                      : NULL;
    x->body = bare_dup(m.body);
    x->body_len = m.body.len;
    amqp_destroy_message(&m);
}

static void
bare_on_confirm(struct bare *b, uint64_t tag, int multiple, int ok)
{
    for (int i = 0; i < b->nwait; i++) {
        if (b->wait_seq[i] == tag || (multiple && b->wait_seq[i] <= tag)) {
            if (!ok)
                bare_die("publish", "nacked by the broker");
            b->wait_ok[i] = 1;
        }
    }
}

/* Reads one frame, waiting at most tv (NULL = forever). 0 = timeout. */
static int
bare_read(struct bare *b, struct timeval *tv)
{
    amqp_frame_t f;
    int st;

    st = amqp_simple_wait_frame_noblock(b->conn, &f, tv);
    if (st == AMQP_STATUS_TIMEOUT)
        return 0;
    if (st != AMQP_STATUS_OK)
        bare_die("amqp read", amqp_error_string2(st));
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 1;
    switch (f.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD:
        bare_on_deliver(b, f.payload.method.decoded);
        break;
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *a = f.payload.method.decoded;

        bare_on_confirm(b, a->delivery_tag, a->multiple, 1);
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *a = f.payload.method.decoded;

        bare_on_confirm(b, a->delivery_tag, a->multiple, 0);
        break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
    case AMQP_BASIC_CANCEL_METHOD:
        bare_die("amqp", "channel or connection closed by the broker");
        break;
    default: break;
    }
    amqp_maybe_release_buffers(b->conn);
    return 1;
}

static void
bare_pg_ok(PGresult *r, ExecStatusType want, const char *what, PGconn *pg)
{
    if (r == NULL || PQresultStatus(r) != want)
        bare_die(what, PQerrorMessage(pg));
    PQclear(r);
}

static void
bare_pg_connect(struct bare *b, const char *conninfo)
{
    char sql[256];

    b->pg = PQconnectdb(conninfo);
    if (PQstatus(b->pg) != CONNECTION_OK)
        bare_die("postgres", PQerrorMessage(b->pg));
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s (event_id, body) VALUES ($1, $2)", b->table);
    bare_pg_ok(PQprepare(b->pg, "ins", sql, 2, NULL), PGRES_COMMAND_OK,
               "prepare", b->pg);
}

static void
bare_insert(struct bare *b, const struct bare_msg *m)
{
    const char *p[2] = {m->id, m->body};

    bare_pg_ok(PQexecPrepared(b->pg, "ins", 2, p, NULL, NULL, 0),
               PGRES_COMMAND_OK, "insert", b->pg);
}

static void
bare_publish(struct bare *b, const struct bare_msg *m)
{
    static const char reply[] = "{\"status\":\"ok\"}";
    amqp_basic_properties_t p;
    amqp_bytes_t body = {sizeof(reply) - 1, (void *)reply};
    int st;

    memset(&p, 0, sizeof(p));
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_TYPE_FLAG;
    p.content_type = amqp_cstring_bytes("application/json");
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.correlation_id = amqp_cstring_bytes(m->id);
    p.type = amqp_cstring_bytes("reply");
    st = amqp_basic_publish(
        b->conn, BARE_CH, amqp_cstring_bytes(""),
        amqp_cstring_bytes(m->reply_to ? m->reply_to : b->out), 0, 0, &p, body);
    if (st != AMQP_STATUS_OK)
        bare_die("publish", amqp_error_string2(st));
    b->wait_seq[b->nwait] = b->next_seq++;
    b->wait_ok[b->nwait++] = 0;
}

static void
bare_wait_confirms(struct bare *b)
{
    for (;;) {
        int done = 1;

        for (int i = 0; i < b->nwait && done; i++)
            done = b->wait_ok[i];
        if (done)
            break;
        bare_read(b, NULL);
    }
    b->nwait = 0;
}

static void
bare_msg_free(struct bare_msg *m)
{
    free(m->id);
    free(m->reply_to);
    free(m->body);
}

/* Handles the first n queued deliveries: one transaction, publish, ack. */
static void
bare_handle(struct bare *b, int n)
{
    double t0 = bare_now(), t1;

    if (b->batched)
        bare_pg_ok(PQexec(b->pg, "BEGIN"), PGRES_COMMAND_OK, "begin", b->pg);
    for (int i = 0; i < n; i++)
        bare_insert(b, &b->q[i]);
    if (b->batched)
        bare_pg_ok(PQexec(b->pg, "COMMIT"), PGRES_COMMAND_OK, "commit", b->pg);
    t1 = bare_now();
    b->t_sql += t1 - t0;
    for (int i = 0; i < n; i++)
        bare_publish(b, &b->q[i]);
    /* Deliveries that arrive meanwhile join b->q behind these n. */
    bare_wait_confirms(b);
    b->t_confirm += bare_now() - t1;
    if (amqp_basic_ack(b->conn, BARE_CH, b->q[n - 1].tag, n > 1) !=
        AMQP_STATUS_OK)
        bare_die("ack", "failed");
    for (int i = 0; i < n; i++)
        bare_msg_free(&b->q[i]);
    memmove(b->q, b->q + n, (size_t)(b->nq - n) * sizeof(*b->q));
    b->nq -= n;
    b->handled += n;
    b->batches++;
}

static void
bare_loop(struct bare *b)
{
    struct timeval zero = {0, 0};

    while (!bare_stop) {
        if (b->nq == 0) {
            struct timeval tick = {0, 200000};

            bare_read(b, &tick); /* wake up now and then for the flag */
            continue;
        }
        /* Take what has arrived already (never wait for a batch to fill:
         * latency at low load is one message's). */
        if (b->batched)
            while (b->nq < b->prefetch && bare_read(b, &zero))
                ;
        bare_handle(b, b->batched ? b->nq : 1);
    }
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"batched", no_argument, NULL, 'b'},
        {"queue", required_argument, NULL, 'q'},
        {"out", required_argument, NULL, 'o'},
        {"prefetch", required_argument, NULL, 'p'},
        {"table", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0}};
    struct bare b = {.queue = "mfa.login",
                     .out = "bench.bare.out",
                     .table = "bench.bare_hop",
                     .prefetch = 100,
                     .next_seq = 1};
    const char *url = getenv("MFA_AMQP_URL");
    const char *pg = getenv("BENCH_PG_CONNINFO");
    struct sigaction sa;
    struct rusage ru;
    int c;

    while ((c = getopt_long(argc, argv, "bq:o:p:t:", lo, NULL)) != -1) {
        switch (c) {
        case 'b': b.batched = 1; break;
        case 'q': b.queue = optarg; break;
        case 'o': b.out = optarg; break;
        case 'p': b.prefetch = (int)strtol(optarg, NULL, 10); break;
        case 't': b.table = optarg; break;
        default:
            fprintf(stderr, "usage: bare [--batched] [--queue Q] [--out Q] "
                            "[--prefetch N] [--table T]\n");
            return 2;
        }
    }
    if (url == NULL || pg == NULL)
        bare_die("environment", "MFA_AMQP_URL and BENCH_PG_CONNINFO needed");
    if (b.prefetch < 1 || b.prefetch > 5000)
        bare_die("--prefetch", "1..5000");
    b.q = calloc(BARE_MAX_BATCH, sizeof(*b.q));
    b.wait_seq = calloc(BARE_MAX_BATCH, sizeof(*b.wait_seq));
    b.wait_ok = calloc(BARE_MAX_BATCH, 1);
    if (b.q == NULL || b.wait_seq == NULL || b.wait_ok == NULL)
        bare_die("calloc", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bare_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    bare_pg_connect(&b, pg);
    bare_connect(&b, url);
    fprintf(stderr, "bare: consuming %s (%s)\n", b.queue,
            b.batched ? "batched" : "per-message");
    bare_loop(&b);
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"messages\": %lld, \"batches\": %lld, \"sql_s\": %.3f, "
           "\"confirm_s\": %.3f, \"cpu_s\": %.3f}\n",
           b.handled, b.batches, b.t_sql, b.t_confirm,
           (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    amqp_channel_close(b.conn, BARE_CH, AMQP_REPLY_SUCCESS);
    amqp_connection_close(b.conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(b.conn);
    PQfinish(b.pg);
    return 0;
}
