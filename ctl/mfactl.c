/*
 * mfactl - the operator's command line for Portal MFA.
 *
 * A table of commands, each in its own cmd_<verb>.c. Global options come
 * before the command; the configuration is the workers' (same file, same
 * MFA_* overrides). Exit codes: 0 ok, 1 the command failed or found
 * something that needs attention, 2 usage.
 */
#include "ctl/ctl.h"
#include "mfa/crypto.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_cmd {
    const char *name;
    int (*run)(struct ctl *c, int argc, char **argv);
    const char *help;
};

static const struct ctl_cmd ctl_cmds[] = {
    {"migrate", cmd_migrate,
     "apply schema/NNN_*.sql in order, once each (--dir DIR)"},
    {"status", cmd_status,
     "queues, consumers, dead letters, deliveries; exit 1 if unhealthy "
     "(--json)"},
    {"dlq", cmd_dlq,
     "dead letters: list [--limit N] [--json] | "
     "replay ID|--all | purge [--yes]"},
    {"user", cmd_user,
     "user show CONTACT_ID [--json]: methods, logins, "
     "deliveries"},
    {"metrics", cmd_metrics,
     "Prometheus text format (node_exporter "
     "textfile collector)"},
    {"settings", cmd_settings,
     "settings sms set --client-id ID --from NUMBER "
     "[--account-sid AC...] | show [--json] | "
     "clear [--yes] | test --to NUMBER"},
    {NULL, NULL, NULL},
};

static void
ctl_usage(FILE *out)
{
    fprintf(out, "usage: mfactl [--config FILE] COMMAND [ARGS]\n\n"
                 "Operator CLI for Portal MFA.\n\ncommands:\n");
    for (const struct ctl_cmd *k = ctl_cmds; k->name; k++)
        fprintf(out, "  %-10s %s\n", k->name, k->help);
    fprintf(out, "\nThe configuration is the workers': --config FILE, "
                 "$MFA_CONFIG or config/mfa.yaml,\nwith MFA_<SECTION>_<KEY> "
                 "overrides.\n");
}

struct db *
ctl_db(struct ctl *c)
{
    struct db *db = db_new(c->cfg.postgres.conninfo);

    if (db_connect(db) != 0) {
        fprintf(stderr, "mfactl: database: %s\n", db->errmsg);
        db_free(db);
        return NULL;
    }
    return db;
}

int
main(int argc, char **argv)
{
    struct ctl c;
    char err[512];
    int i = 1, rc = 2;

    memset(&c, 0, sizeof(c));
    log_open("mfactl");
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            c.config_path = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            ctl_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("mfactl %s\n", MFA_VERSION);
            return 0;
        } else {
            ctl_usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        ctl_usage(stderr);
        return 2;
    }
    crypto_setup();
    if (mfa_config_load(&c.cfg, c.config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "mfactl: configuration: %s\n", err);
        return 1;
    }
    for (const struct ctl_cmd *k = ctl_cmds; k->name; k++) {
        if (strcmp(k->name, argv[i]) == 0) {
            rc = k->run(&c, argc - i, argv + i);
            goto out;
        }
    }
    fprintf(stderr, "mfactl: unknown command \"%s\"\n", argv[i]);
    ctl_usage(stderr);
out:
    mfa_config_free(&c.cfg);
    return rc;
}
