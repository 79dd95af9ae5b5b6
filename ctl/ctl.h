/*
 * ctl.h - what every mfactl command gets: the loaded configuration and
 * helpers to reach the database. One cmd_<verb>.c per command.
 */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include "mfa/db.h"
#include "mfa/settings.h"

struct ctl {
    struct mfa_config cfg;
    const char *config_path;
};

/* Connects with postgres.conninfo; prints the error and returns NULL. */
struct db *ctl_db(struct ctl *c);

int cmd_migrate(struct ctl *c, int argc, char **argv);
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_dlq(struct ctl *c, int argc, char **argv);
int cmd_user(struct ctl *c, int argc, char **argv);
int cmd_metrics(struct ctl *c, int argc, char **argv);
int cmd_settings(struct ctl *c, int argc, char **argv);

#endif
