/*
 * watchdog.c - SIGALRM based watchdog (see watchdog.h).
 *
 * The handler only uses async-signal-safe calls: write(2) and _exit(2).
 */
#include "util/watchdog.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static const char *watchdog_what = "";
static int watchdog_installed;

static void
watchdog_fire(int sig)
{
    static const char pre[] = "{\"level\":\"fatal\",\"msg\":\"watchdog: "
                              "stuck in ";
    static const char post[] = ", exiting to be restarted\"}\n";
    ssize_t r;

    (void)sig;
    r = write(STDERR_FILENO, pre, sizeof(pre) - 1);
    r = write(STDERR_FILENO, watchdog_what, strlen(watchdog_what));
    r = write(STDERR_FILENO, post, sizeof(post) - 1);
    (void)r;
    _exit(70);
}

void
watchdog_arm(unsigned seconds, const char *what)
{
    if (!watchdog_installed) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = watchdog_fire;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        watchdog_installed = 1;
    }
    watchdog_what = what;
    alarm(seconds);
}

void
watchdog_disarm(void)
{
    alarm(0);
}
