/*
 * producer_session - one libmfa-producer handle driven from stdin, so an
 * integration test can keep a connection open across a broker restart
 * (tests only; mfa-publish makes a new connection per run).
 *
 *     producer_session URL
 *     stdin:  publish TYPE DATA_JSON
 *             call TYPE TIMEOUT_MS DATA_JSON
 *     stdout: STATUS EVENT_ID REPLY_OR_ERROR     (one line per command)
 *
 * The Makefile links test tools with build/libmfa.a only, so the two
 * library files are compiled in here.
 */
#include "producer/event.c"
#include "producer/producer.c"

int
main(int argc, char **argv)
{
    struct mfa_producer_options o;
    struct mfa_producer *p;
    char line[4096], err[1024], id[MFA_PRODUCER_ID_LEN];
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: producer_session URL\n");
        return 2;
    }
    memset(&o, 0, sizeof(o));
    o.url = argv[1];
    o.name = "producer_session";
    p = mfa_producer_new(&o, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *save = NULL, *verb, *type, *arg, *reply = NULL;
        int st;

        line[strcspn(line, "\n")] = '\0';
        verb = strtok_r(line, " ", &save);
        type = strtok_r(NULL, " ", &save);
        if (verb == NULL || type == NULL)
            continue;
        id[0] = '\0';
        err[0] = '\0';
        if (strcmp(verb, "call") == 0) {
            int ms = atoi(strtok_r(NULL, " ", &save));

            arg = strtok_r(NULL, "", &save);
            st = mfa_producer_call(p, type, arg, NULL, ms, id, &reply, err,
                                   sizeof(err));
        } else {
            arg = strtok_r(NULL, "", &save);
            st = mfa_producer_publish(p, type, arg, NULL, id, err, sizeof(err));
        }
        printf("%d %s %s\n", st, id[0] ? id : "-", reply ? reply : err);
        fflush(stdout);
        free(reply);
    }
    mfa_producer_free(p);
    return rc;
}
