/*
 * load.c - the benchmark's bulk publisher and reply sink.
 *
 * Called by bench/run.py; a C program so that the load side is never the
 * limit (run.py measures both subcommands' own rates and reports them
 * beside the figures they feed).
 *
 *   load preload FILE [--reply-to Q] [--exchange mfa.events] [--queue Q]
 *                [--routing-key RK]
 *       Publishes one event per line of FILE ("event_id TAB type TAB
 *       data-json") in the envelope, as the portal would: persistent,
 *       message_id = event_id, type, content_type JSON, routing key =
 *       type (or RK) on the exchange (or straight to --queue; internal
 *       jobs: --exchange mfa.dispatch --routing-key sms), mandatory, with
 *       publisher confirms, up to 2000 in flight. Prints one JSON line:
 *       {"published": N, "seconds": S}.
 *   load sink QUEUE --count N --out FILE [--idle S]
 *       Declares QUEUE (durable), consumes it with automatic acks and
 *       writes "recv_us TAB correlation_id TAB status" per message, the
 *       time in CLOCK_REALTIME microseconds and status the reply's
 *       "status" value. Prints "ready" on stderr once consuming; exits
 *       after N messages or S seconds (default 30) without one.
 * Environment: MFA_AMQP_URL.
 * Not production code: errors end the process with status 1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#define LOAD_CH 1
#define LOAD_WINDOW 2000

static void
load_die(const char *what, const char *why)
{
    fprintf(stderr, "load: %s: %s\n", what, why);
    exit(1);
}

static long long
load_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
load_ok(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    load_die(what, r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                       ? amqp_error_string2(r.library_error)
                       : "refused by the broker");
}

static amqp_connection_state_t
load_connect(const char *name)
{
    const char *url = getenv("MFA_AMQP_URL");
    struct amqp_connection_info ci;
    amqp_connection_state_t c;
    amqp_socket_t *s;
    amqp_table_entry_t e[1];
    amqp_table_t props;
    char *u;

    if (url == NULL || (u = strdup(url)) == NULL ||
        amqp_parse_url(u, &ci) != AMQP_STATUS_OK)
        load_die("MFA_AMQP_URL", "missing or not an amqp:// URL");
    c = amqp_new_connection();
    s = amqp_tcp_socket_new(c);
    if (s == NULL || amqp_socket_open(s, ci.host, ci.port) != 0)
        load_die("amqp", "cannot connect");
    e[0].key = amqp_cstring_bytes("connection_name");
    e[0].value.kind = AMQP_FIELD_KIND_UTF8;
    e[0].value.value.bytes = amqp_cstring_bytes(name);
    props.num_entries = 1;
    props.entries = e;
    load_ok(amqp_login_with_properties(c, ci.vhost, 0, 131072, 0, &props,
                                       AMQP_SASL_METHOD_PLAIN, ci.user,
                                       ci.password),
            "login");
    amqp_channel_open(c, LOAD_CH);
    load_ok(amqp_get_rpc_reply(c), "channel.open");
    free(u);
    return c;
}

static void
load_close(amqp_connection_state_t c)
{
    amqp_channel_close(c, LOAD_CH, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* ---- preload ---------------------------------------------------------- */

struct load_preload {
    amqp_connection_state_t c;
    const char *exchange;
    const char *queue;
    const char *reply_to;
    const char *routing_key;
    uint64_t published;
    uint64_t confirmed; /* every seq <= confirmed is acked */
};

/* Reads confirms until fewer than `left` publishes are unconfirmed. The
 * broker confirms one channel's publishes in order here (one queue per
 * routing key, no mirroring), so a watermark is enough. */
static void
load_preload_wait(struct load_preload *p, uint64_t left)
{
    while (p->published - p->confirmed > left) {
        amqp_frame_t f;
        int st = amqp_simple_wait_frame(p->c, &f);

        if (st != AMQP_STATUS_OK)
            load_die("amqp read", amqp_error_string2(st));
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;

            if (a->multiple || a->delivery_tag > p->confirmed)
                p->confirmed = a->delivery_tag > p->confirmed ? a->delivery_tag
                                                              : p->confirmed;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            load_die("publish", "nacked by the broker");
        } else if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
            load_die("publish", "returned: no queue bound (topology?)");
        } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                   f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            load_die("amqp", "channel closed by the broker");
        }
        amqp_maybe_release_buffers(p->c);
    }
}

static void
load_preload_one(struct load_preload *p, char *line, char *body, size_t bodycap)
{
    char *id = line, *type, *data, stamp[40];
    amqp_basic_properties_t props;
    amqp_bytes_t b;
    struct tm tm;
    time_t now = time(NULL);
    int n, st;

    type = strchr(id, '\t');
    if (type == NULL || (data = strchr(type + 1, '\t')) == NULL)
        load_die("input", "a line is not event_id TAB type TAB data");
    *type++ = '\0';
    *data++ = '\0';
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(body, bodycap,
                 "{\"event_id\":\"%s\",\"type\":\"%s\",\"occurred_at\":"
                 "\"%s\",\"data\":%s}",
                 id, type, stamp, data);
    if (n < 0 || (size_t)n >= bodycap)
        load_die("input", "event too long");
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
                   AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                   AMQP_BASIC_TYPE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = amqp_cstring_bytes(id);
    props.type = amqp_cstring_bytes(type);
    if (p->reply_to) {
        props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        props.reply_to = amqp_cstring_bytes(p->reply_to);
    }
    b.bytes = body;
    b.len = (size_t)n;
    st = amqp_basic_publish(p->c, LOAD_CH,
                            amqp_cstring_bytes(p->queue ? "" : p->exchange),
                            amqp_cstring_bytes(p->queue         ? p->queue
                                               : p->routing_key ? p->routing_key
                                                                : type),
                            1, 0, &props, b);
    if (st != AMQP_STATUS_OK)
        load_die("publish", amqp_error_string2(st));
    p->published++;
}

static int
load_preload(int argc, char **argv)
{
    static const struct option lo[] = {
        {"reply-to", required_argument, NULL, 'r'},
        {"exchange", required_argument, NULL, 'e'},
        {"queue", required_argument, NULL, 'q'},
        {"routing-key", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0}};
    struct load_preload p = {.exchange = "mfa.events"};
    static char line[65536], body[70000];
    long long t0;
    FILE *in;
    int c;

    while ((c = getopt_long(argc, argv, "r:e:q:k:", lo, NULL)) != -1) {
        switch (c) {
        case 'r': p.reply_to = optarg; break;
        case 'k': p.routing_key = optarg; break;
        case 'e': p.exchange = optarg; break;
        case 'q': p.queue = optarg; break;
        default: return 2;
        }
    }
    if (optind >= argc)
        load_die("usage", "load preload FILE [--reply-to Q] [--queue Q]");
    in = fopen(argv[optind], "r");
    if (in == NULL)
        load_die(argv[optind], strerror(errno));
    p.c = load_connect("bench-preload");
    amqp_confirm_select(p.c, LOAD_CH);
    load_ok(amqp_get_rpc_reply(p.c), "confirm.select");
    if (p.reply_to) {
        amqp_queue_declare(p.c, LOAD_CH, amqp_cstring_bytes(p.reply_to), 0, 1,
                           0, 0, amqp_empty_table);
        load_ok(amqp_get_rpc_reply(p.c), "queue.declare reply-to");
    }
    t0 = load_now_us();
    while (fgets(line, sizeof(line), in) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        load_preload_one(&p, line, body, sizeof(body));
        load_preload_wait(&p, LOAD_WINDOW);
    }
    load_preload_wait(&p, 0);
    printf("{\"published\": %llu, \"seconds\": %.3f}\n",
           (unsigned long long)p.published, (load_now_us() - t0) / 1e6);
    fclose(in);
    load_close(p.c);
    return 0;
}

/* ---- sink ------------------------------------------------------------- */

/* The "status" value of a reply body, copied into out ("" if none). */
static void
load_sink_status(const amqp_bytes_t *b, char *out, size_t n)
{
    static const char key[] = "\"status\":";
    const char *s = b->bytes, *end = s + b->len, *v;
    size_t k = 0;

    out[0] = '\0';
    v = memmem(s, b->len, key, sizeof(key) - 1);
    if (v == NULL)
        return;
    v += sizeof(key) - 1;
    while (v < end && (*v == ' ' || *v == '"'))
        v++;
    while (v < end && *v != '"' && *v != ',' && *v != '}' && k + 1 < n)
        out[k++] = *v++;
    out[k] = '\0';
}

static int
load_sink(int argc, char **argv)
{
    static const struct option lo[] = {{"count", required_argument, NULL, 'n'},
                                       {"out", required_argument, NULL, 'o'},
                                       {"idle", required_argument, NULL, 'i'},
                                       {NULL, 0, NULL, 0}};
    long long want = 0, got = 0, idle_s = 30;
    const char *outpath = NULL, *queue;
    amqp_connection_state_t c;
    FILE *out;
    int ch;

    while ((ch = getopt_long(argc, argv, "n:o:i:", lo, NULL)) != -1) {
        switch (ch) {
        case 'n': want = strtoll(optarg, NULL, 10); break;
        case 'o': outpath = optarg; break;
        case 'i': idle_s = strtoll(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (optind >= argc || outpath == NULL || want <= 0)
        load_die("usage", "load sink QUEUE --count N --out FILE");
    queue = argv[optind];
    out = fopen(outpath, "w");
    if (out == NULL)
        load_die(outpath, strerror(errno));
    c = load_connect("bench-sink");
    amqp_queue_declare(c, LOAD_CH, amqp_cstring_bytes(queue), 0, 1, 0, 0,
                       amqp_empty_table);
    load_ok(amqp_get_rpc_reply(c), "queue.declare");
    amqp_basic_qos(c, LOAD_CH, 0, 2000, 0);
    load_ok(amqp_get_rpc_reply(c), "basic.qos");
    amqp_basic_consume(c, LOAD_CH, amqp_cstring_bytes(queue), amqp_empty_bytes,
                       0, 1, 0, amqp_empty_table);
    load_ok(amqp_get_rpc_reply(c), "basic.consume");
    fprintf(stderr, "ready\n");
    while (got < want) {
        struct timeval tv = {idle_s, 0};
        amqp_envelope_t env;
        amqp_rpc_reply_t r;
        char status[40];
        long long t;

        amqp_maybe_release_buffers(c);
        r = amqp_consume_message(c, &env, &tv, 0);
        t = load_now_us();
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            fprintf(stderr, "load sink: idle for %llds after %lld of %lld\n",
                    idle_s, got, want);
            break;
        }
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            load_die("consume", "failed");
        load_sink_status(&env.message.body, status, sizeof(status));
        fprintf(out, "%lld\t%.*s\t%s\n", t,
                env.message.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG
                    ? (int)env.message.properties.correlation_id.len
                    : 0,
                (const char *)env.message.properties.correlation_id.bytes,
                status);
        amqp_destroy_envelope(&env);
        got++;
    }
    fclose(out);
    printf("{\"received\": %lld}\n", got);
    load_close(c);
    return got == want ? 0 : 3;
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "preload") == 0)
        return load_preload(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "sink") == 0)
        return load_sink(argc - 1, argv + 1);
    fprintf(stderr, "usage: load preload FILE [...] | load sink QUEUE [...]\n");
    return 2;
}
