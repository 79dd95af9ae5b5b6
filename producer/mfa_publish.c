/*
 * mfa-publish - publish Portal MFA events from a shell, wait for replies,
 * push CRM changes in bulk.
 *
 * A thin command over libmfa-producer (producer/mfa_producer.h): the
 * event is built and validated exactly as the workers will read it, then
 * published with publisher confirms and `mandatory`. Used by portal and
 * CRM developers to try things, by CRM exports (--lines), by operators
 * and by the integration tests.
 *
 * Exit status (also in --help): 0 done; 1 refused input, nothing
 * published; 2 broker unreachable or an event not confirmed; 3 --wait
 * timed out after a confirmed publish.
 *
 * Security notes: the broker URL holds a password and is only shown
 * redacted. Event data may hold a verification code (login.code_submitted)
 * or addresses: messages name fields and lines, never values. The
 * library installs no signal handler; this program owns its process, so
 * it guards librabbitmq-c 0.11's unbounded socket writes with an alarm
 * that exits with status 2.
 */
#include "producer/mfa_producer.h"

#include "mfa/envelope.h"
#include "mfa/settings.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <amqp.h>

#define PUB_NAME "mfa-publish"
#define PUB_WAIT_DEFAULT_S 10
#define PUB_WAIT_MAX_S 3600
#define PUB_MAX_SHOWN_ERRORS 10
/* Seconds a window may take beyond its confirm timeout before the alarm
 * decides the broker stopped reading our socket. */
#define PUB_GUARD_SLACK_S 30

enum {
    PUB_EXIT_OK = 0,
    PUB_EXIT_REFUSED = 1,
    PUB_EXIT_BROKER = 2,
    PUB_EXIT_NO_REPLY = 3,
};

struct pub_args {
    const char *type;
    const char *data;
    const char *data_file;
    const char *event_id;
    const char *url;
    const char *config;
    int wait_s; /* 0 = do not wait */
    int lines;
    int no_declare;
};

/* One input line of --lines, built and validated before any publish. */
struct pub_line {
    char *body;
    char id[MFA_PRODUCER_ID_LEN];
    size_t lineno;
};

/* For the alarm handler: how far the bulk got. */
static volatile sig_atomic_t pub_confirmed;

static void
pub_usage(FILE *out)
{
    const char *const *t;

    fprintf(
        out,
        "usage: mfa-publish TYPE [--data JSON | --data-file FILE] "
        "[--event-id ID]\n"
        "                   [--wait[=SECONDS]] [--url URL] "
        "[--config FILE] [--no-declare]\n"
        "       mfa-publish TYPE --lines [--url URL] [--config FILE] "
        "< FILE\n"
        "       mfa-publish --help | --version\n"
        "\n"
        "Publishes a Portal MFA event to RabbitMQ (exchange mfa.events, "
        "routing key\n"
        "TYPE), persistent, with publisher confirms; prints its event_id "
        "once the\n"
        "broker has taken it over. The event is checked first with the "
        "workers' own\n"
        "validator: what they would refuse is refused here, naming the "
        "field.\n"
        "\n"
        "  --data JSON        the event's data object (default {})\n"
        "  --data-file FILE   read the data object from FILE (- = stdin)\n"
        "  --event-id ID      publish with this UUID as event_id, e.g. "
        "again after\n"
        "                     exit 2: workers apply an event_id only once "
        "(default:\n"
        "                     a new one)\n"
        "  --wait[=SECONDS]   wait for the workers' reply (login.* only) "
        "and print it\n"
        "                     as one line of JSON after the event_id "
        "(default %d s;\n"
        "                     write --wait=5, not --wait 5)\n"
        "  --lines            bulk (CRM pushes): one data object per line "
        "on stdin,\n"
        "                     blank lines skipped. All lines are checked "
        "first; if\n"
        "                     any is refused, nothing is published. Up to "
        "1000 events\n"
        "                     are in flight at a time. Prints the counts "
        "(progress\n"
        "                     on stderr when it is a terminal)\n"
        "  --url URL          broker, amqp://user:pass@host:port/vhost or "
        "amqps://\n"
        "                     (default: $MFA_AMQP_URL, else amqp.url of "
        "the config)\n"
        "  --config FILE      configuration (default $MFA_CONFIG, else "
        "config/mfa.yaml\n"
        "                     if present) for amqp.url, amqp.queue_type,\n"
        "                     amqp.delivery_limit, amqp.confirm_timeout_ms\n"
        "  --no-declare       do not declare exchanges and queues (a broker "
        "user that\n"
        "                     may only publish); the workers' queues must "
        "exist\n"
        "  --help, --version\n"
        "\n"
        "Exit status:\n"
        "  0  published and confirmed (with --wait: and answered)\n"
        "  1  refused input (arguments, configuration, JSON, a field; with "
        "--lines the\n"
        "     line number): nothing was published\n"
        "  2  broker unreachable, or an event not confirmed, returned "
        "(no queue bound)\n"
        "     or nacked; an unconfirmed event may have arrived: publish it "
        "again with\n"
        "     --event-id\n"
        "  3  --wait: published and confirmed, but no reply in time "
        "(is mfa-codes\n"
        "     running?); the event_id is printed, the event stays queued\n"
        "\n"
        "Event types and their data fields (the rest are optional):\n",
        PUB_WAIT_DEFAULT_S);
    for (t = mfa_producer_types(); *t != NULL; t++)
        mfa_producer_type_help(*t, out);
    fprintf(
        out,
        "\n"
        "Examples:\n"
        "  mfa-publish contact.demoted --data '{\"contact_id\":\"c-42\"}'\n"
        "  id=$(cat /proc/sys/kernel/random/uuid)     # a new login_id\n"
        "  mfa-publish login.started --wait=5 \\\n"
        "      --data '{\"login_id\":\"'$id'\",\"contact_id\":\"c-42\"}'\n"
        "  mfa-publish login.code_requested --wait \\\n"
        "      --data '{\"login_id\":\"'$id'\",\"method\":\"email\"}'\n"
        "  jq -c '.[]' changes.json | mfa-publish contact.changed --lines\n");
}

static void
pub_version(void)
{
    printf("%s %s (libmfa-producer %s, librabbitmq-c %s)\n", PUB_NAME,
           MFA_VERSION, mfa_producer_version(), amqp_version());
}

/* Async-signal-safe: write(2) and _exit(2) only. */
static void
pub_on_alarm(int sig)
{
    static const char a[] =
        PUB_NAME ": the broker stopped reading from "
                 "the connection (memory or disk alarm, or a "
                 "hung node); ";
    static const char b[] = " events were confirmed before it; exiting\n";
    char num[24];
    int n = (int)sizeof(num), v = (int)pub_confirmed;
    ssize_t r;

    (void)sig;
    num[--n] = '\0';
    do {
        num[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && n > 0);
    r = write(STDERR_FILENO, a, sizeof(a) - 1);
    r = write(STDERR_FILENO, num + n, sizeof(num) - 1 - (size_t)n);
    r = write(STDERR_FILENO, b, sizeof(b) - 1);
    (void)r;
    _exit(PUB_EXIT_BROKER);
}

static int
pub_exit_code(int status)
{
    switch (status) {
    case MFA_PRODUCER_OK: return PUB_EXIT_OK;
    case MFA_PRODUCER_INVALID: return PUB_EXIT_REFUSED;
    case MFA_PRODUCER_NO_REPLY: return PUB_EXIT_NO_REPLY;
    default: return PUB_EXIT_BROKER;
    }
}

/* The type is known, and --wait only where a reply comes. */
static int
pub_check_type(const struct pub_args *a)
{
    const char *const *t;
    char err[512];
    char *body = NULL;

    for (t = mfa_producer_types(); *t != NULL; t++)
        if (strcmp(*t, a->type) == 0)
            break;
    if (*t == NULL) {
        /* The library words it (and lists the known types). */
        if (mfa_producer_build(a->type, NULL, NULL, &body, NULL, err,
                               sizeof(err)) != MFA_PRODUCER_OK)
            fprintf(stderr, "%s: refused, nothing published: %s\n", PUB_NAME,
                    err);
        free(body);
        return -1;
    }
    if (a->wait_s > 0 && !mfa_producer_type_replies(a->type)) {
        fprintf(stderr,
                "%s: refused, nothing published: %s gets no "
                "reply (only login.* events are answered); leave out "
                "--wait\n",
                PUB_NAME, a->type);
        return -1;
    }
    return 0;
}

/* Parses the command line; 0, or -1 after a message (exit 1). */
static int
pub_parse_args(int argc, char **argv, struct pub_args *a, int *done)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"data-file", required_argument, NULL, 'f'},
        {"event-id", required_argument, NULL, 'e'},
        {"wait", optional_argument, NULL, 'w'},
        {"lines", no_argument, NULL, 'l'},
        {"no-declare", no_argument, NULL, 'n'},
        {"url", required_argument, NULL, 'u'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    char *end;
    long v;
    int c;

    *done = 0;
    memset(a, 0, sizeof(*a));
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': a->data = optarg; break;
        case 'f': a->data_file = optarg; break;
        case 'e': a->event_id = optarg; break;
        case 'l': a->lines = 1; break;
        case 'n': a->no_declare = 1; break;
        case 'u': a->url = optarg; break;
        case 'c': a->config = optarg; break;
        case 'w':
            a->wait_s = PUB_WAIT_DEFAULT_S;
            if (optarg != NULL) {
                errno = 0;
                v = strtol(optarg, &end, 10);
                if (errno || end == optarg || *end != '\0' || v < 1 ||
                    v > PUB_WAIT_MAX_S) {
                    fprintf(stderr,
                            "%s: --wait: give whole seconds, 1 to "
                            "%d (--wait=10)\n",
                            PUB_NAME, PUB_WAIT_MAX_S);
                    return -1;
                }
                a->wait_s = (int)v;
            }
            break;
        case 'h':
            pub_usage(stdout);
            *done = 1;
            return 0;
        case 'V':
            pub_version();
            *done = 1;
            return 0;
        default:
            fprintf(stderr,
                    "%s: unknown option or missing value: %s\n"
                    "Try '%s --help'.\n",
                    PUB_NAME, argv[optind - 1], PUB_NAME);
            return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr,
                "%s: give exactly one event TYPE (%s)\n"
                "Try '%s --help'.\n",
                PUB_NAME, optind >= argc ? "none given" : "more than one given",
                PUB_NAME);
        return -1;
    }
    a->type = argv[optind];
    if (a->data != NULL && a->data_file != NULL) {
        fprintf(stderr, "%s: give --data or --data-file, not both\n", PUB_NAME);
        return -1;
    }
    if (a->lines && (a->data || a->data_file || a->event_id || a->wait_s)) {
        fprintf(stderr,
                "%s: --lines reads the data from stdin and gives "
                "every line a new event_id; it takes no --data, "
                "--data-file, --event-id or --wait\n",
                PUB_NAME);
        return -1;
    }
    return 0;
}

/* The whole of a small file (the data object), NUL-terminated. */
static char *
pub_read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = ENVELOPE_MAX_BODY + 2, n;
    char *buf = NULL;

    if (f == NULL) {
        snprintf(err, errlen, "--data-file %s: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(cap);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    n = fread(buf, 1, cap - 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "--data-file %s: read error", path);
        goto fail;
    }
    if (n == cap - 1) {
        snprintf(err, errlen, "--data-file %s: larger than %d bytes", path,
                 ENVELOPE_MAX_BODY);
        goto fail;
    }
    if (memchr(buf, '\0', n) != NULL) {
        snprintf(err, errlen, "--data-file %s: contains a NUL byte", path);
        goto fail;
    }
    buf[n] = '\0';
    goto out;
fail:
    free(buf);
    buf = NULL;
out:
    if (f != NULL && f != stdin)
        fclose(f);
    return buf;
}

static int
pub_one(struct mfa_producer *p, const struct pub_args *a, unsigned guard_s)
{
    char id[MFA_PRODUCER_ID_LEN], err[1024];
    char *data = NULL, *reply = NULL;
    int st;

    if (a->data_file != NULL) {
        data = pub_read_file(a->data_file, err, sizeof(err));
        if (data == NULL) {
            fprintf(stderr, "%s: %s\n", PUB_NAME, err);
            return PUB_EXIT_REFUSED;
        }
    }
    id[0] = '\0';
    alarm(guard_s + (unsigned)a->wait_s);
    if (a->wait_s > 0)
        st = mfa_producer_call(p, a->type, data ? data : a->data, a->event_id,
                               a->wait_s * 1000, id, &reply, err, sizeof(err));
    else
        st = mfa_producer_publish(p, a->type, data ? data : a->data,
                                  a->event_id, id, err, sizeof(err));
    alarm(0);
    /* The event_id whenever the event is with the broker: with it the
     * user can find the event, or its reply, later. */
    if (st == MFA_PRODUCER_OK || st == MFA_PRODUCER_NO_REPLY)
        printf("%s\n", id);
    if (reply != NULL)
        printf("%s\n", reply);
    if (st == MFA_PRODUCER_INVALID)
        fprintf(stderr, "%s: refused, nothing published: %s\n", PUB_NAME, err);
    else if (st != MFA_PRODUCER_OK)
        fprintf(stderr, "%s: %s\n", PUB_NAME, err);
    free(reply);
    free(data);
    return pub_exit_code(st);
}

/* Strips the line end; 1 when nothing but blanks is left. */
static int
pub_blank(char *s, ssize_t *len)
{
    while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r'))
        s[--*len] = '\0';
    for (ssize_t i = 0; i < *len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

/*
 * Reads and validates every line of stdin. 0 with out and n filled, or -1
 * after telling which lines were refused.
 */
static int
pub_read_lines(const char *type, struct pub_line **out, size_t *n)
{
    struct pub_line *v = NULL;
    size_t cap = 0, count = 0, lineno = 0, bad = 0, linecap = 0;
    char *line = NULL, err[512];
    ssize_t len;
    int rc = -1;

    while ((len = getline(&line, &linecap, stdin)) >= 0) {
        char *body = NULL;

        lineno++;
        if (pub_blank(line, &len))
            continue;
        if (count == cap) {
            struct pub_line *nv;

            cap = cap ? cap * 2 : 1024;
            nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                fprintf(stderr, "%s: out of memory at line %zu\n", PUB_NAME,
                        lineno);
                goto out;
            }
            v = nv;
        }
        if ((size_t)len != strlen(line))
            snprintf(err, sizeof(err), "contains a NUL byte");
        else if (len > ENVELOPE_MAX_BODY)
            snprintf(err, sizeof(err),
                     "data: too large (%zd bytes, max "
                     "%d)",
                     len, ENVELOPE_MAX_BODY);
        else if (mfa_producer_build(type, line, NULL, &body, v[count].id, err,
                                    sizeof(err)) == MFA_PRODUCER_OK) {
            v[count].body = body;
            v[count++].lineno = lineno;
            continue;
        }
        if (++bad <= PUB_MAX_SHOWN_ERRORS)
            fprintf(stderr, "%s: line %zu: %s\n", PUB_NAME, lineno, err);
    }
    if (ferror(stdin)) {
        fprintf(stderr, "%s: reading stdin: %s\n", PUB_NAME, strerror(errno));
        goto out;
    }
    if (bad > 0) {
        if (bad > PUB_MAX_SHOWN_ERRORS)
            fprintf(stderr, "%s: ... and %zu more refused lines\n", PUB_NAME,
                    bad - PUB_MAX_SHOWN_ERRORS);
        fprintf(stderr,
                "%s: refused %zu of %zu lines; nothing was "
                "published\n",
                PUB_NAME, bad, bad + count);
        goto out;
    }
    rc = 0;
out:
    free(line);
    if (rc != 0) {
        for (size_t i = 0; i < count; i++)
            free(v[i].body);
        free(v);
        v = NULL;
        count = 0;
    }
    *out = v;
    *n = count;
    return rc;
}

/* One line on a terminal, rewritten after every window. */
static void
pub_progress(size_t done, size_t total)
{
    fprintf(stderr, "\r%s: %zu/%zu events confirmed", PUB_NAME, done, total);
}

static int
pub_lines(struct mfa_producer *p, const struct pub_args *a, int window,
          unsigned guard_s)
{
    struct mfa_producer_msg *m = NULL;
    struct pub_line *v = NULL;
    size_t n = 0, ok = 0, refused = 0, unknown = 0, sent_upto = 0;
    size_t first_bad = 0;
    char err[1024] = "";
    int tty = isatty(STDERR_FILENO), st = MFA_PRODUCER_OK;

    if (pub_read_lines(a->type, &v, &n) != 0)
        return PUB_EXIT_REFUSED;
    if (n > 0) {
        st = mfa_producer_connect(p, err, sizeof(err));
        if (st != MFA_PRODUCER_OK) {
            fprintf(stderr, "%s: %s\n", PUB_NAME, err);
            fprintf(stderr, "%s: nothing was published\n", PUB_NAME);
            goto out;
        }
    }
    m = calloc((size_t)window, sizeof(*m));
    if (m == NULL) {
        fprintf(stderr, "%s: out of memory\n", PUB_NAME);
        st = MFA_PRODUCER_UNREACHABLE;
        goto out;
    }
    /* One window per call, so progress and the alarm follow windows. */
    for (size_t start = 0; start < n && st == MFA_PRODUCER_OK;
         start += (size_t)window) {
        size_t k = n - start < (size_t)window ? n - start : (size_t)window;

        for (size_t i = 0; i < k; i++) {
            m[i].type = a->type;
            m[i].body = v[start + i].body;
            m[i].event_id = v[start + i].id;
        }
        alarm(guard_s);
        st = mfa_producer_publish_batch(p, m, k, err, sizeof(err));
        alarm(0);
        for (size_t i = 0; i < k; i++) {
            if (m[i].status == MFA_PRODUCER_OK)
                ok++;
            else if (m[i].status == MFA_PRODUCER_REFUSED)
                refused++;
            else
                unknown++;
            if (m[i].status != MFA_PRODUCER_OK && first_bad == 0)
                first_bad = v[start + i].lineno;
        }
        sent_upto = start + k;
        pub_confirmed = (sig_atomic_t)ok;
        if (tty)
            pub_progress(ok, n);
    }
    if (tty && n > 0)
        fputc('\n', stderr);
    if (st != MFA_PRODUCER_OK) {
        fprintf(stderr, "%s: %s\n", PUB_NAME, err);
        fprintf(stderr,
                "%s: stopped at the first failing window: %zu "
                "confirmed, %zu refused by the broker, %zu unconfirmed "
                "(may have arrived), %zu not sent; first line not "
                "confirmed: %zu\n",
                PUB_NAME, ok, refused, unknown, n - sent_upto, first_bad);
    }
    printf("%s: %zu of %zu events confirmed (%s)\n", PUB_NAME, ok, n, a->type);
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].body);
    free(v);
    free(m);
    return pub_exit_code(st == MFA_PRODUCER_INVALID ? MFA_PRODUCER_REFUSED
                                                    : st);
}

int
main(int argc, char **argv)
{
    struct mfa_producer_options o;
    struct mfa_producer *p = NULL;
    struct mfa_config cfg;
    struct pub_args a;
    char err[512];
    unsigned guard_s;
    int done, rc = PUB_EXIT_REFUSED, loaded = 0;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, pub_on_alarm);
    if (pub_parse_args(argc, argv, &a, &done) != 0)
        return PUB_EXIT_REFUSED;
    if (done)
        return PUB_EXIT_OK;
    if (pub_check_type(&a) != 0)
        goto out;
    if (mfa_config_load(&cfg, a.config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: configuration: %s\n", PUB_NAME, err);
        goto out;
    }
    loaded = 1;
    memset(&o, 0, sizeof(o));
    o.url = a.url ? a.url : cfg.amqp.url;
    o.name = PUB_NAME;
    o.confirm_timeout_ms = (int)cfg.amqp.confirm_timeout_ms;
    o.queue_type = cfg.amqp.queue_type;
    o.delivery_limit = (int)cfg.amqp.delivery_limit;
    o.window = 1000;
    o.no_declare = a.no_declare;
    p = mfa_producer_new(&o, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "%s: %s\n", PUB_NAME, err);
        goto out;
    }
    /* Every wait in the library is bounded by the confirm timeout except
     * a socket write to a broker that stopped reading: the alarm ends
     * that one. Connecting takes up to two timeouts plus the TCP one. */
    guard_s = (unsigned)(3 * o.confirm_timeout_ms / 1000) + PUB_GUARD_SLACK_S;
    rc =
        a.lines ? pub_lines(p, &a, o.window, guard_s) : pub_one(p, &a, guard_s);
out:
    mfa_producer_free(p);
    if (loaded)
        mfa_config_free(&cfg);
    fflush(stdout);
    return rc;
}
