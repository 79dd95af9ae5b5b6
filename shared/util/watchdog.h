/*
 * watchdog.h - last line of defence against a call that never returns.
 *
 * librabbitmq-c 0.11 can block forever in a write to a dead or blocked
 * broker. Around such calls the loop arms a timer; if it fires, the
 * process exits (status 70) and its supervisor restarts it. Unacked
 * messages go back to the broker, so nothing is lost (Postfix
 * util/watchdog.c takes the same view).
 */
#ifndef UTIL_WATCHDOG_H
#define UTIL_WATCHDOG_H

void watchdog_arm(unsigned seconds, const char *what);
void watchdog_disarm(void);

#endif
