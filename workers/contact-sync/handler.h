/*
 * handler.h - mfa-contact-sync's handler for the worker runtime.
 */
#ifndef CONTACT_HANDLER_H
#define CONTACT_HANDLER_H

#include "runtime/worker.h"

/* contact.promoted, contact.changed, contact.demoted, user.email_confirmed;
 * any other type is rejected (dead-lettered with the reason). */
enum mfa_verdict contact_handle(struct job *job);

#endif
