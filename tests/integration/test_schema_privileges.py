"""The schema's roles and privileges, checked against a real PostgreSQL.

What the design promises: the portal reads three views and nothing else
(it can never write an email or a phone number, not even through an
auto-updatable view); the workers write only the columns they own (UPDATE
granted per column); operators read the views and manage the SMS settings
without being able to read the sealed secret back; and the migrations can
be applied to a second database of a cluster whose roles already exist.

Needs MFA_POSTGRES_CONNINFO: a superuser conninfo (trust auth, as the test
servers use) to a migrated database; other roles connect with the same
conninfo and another user. Independent of conftest.py's fixtures, so it
also runs alone:

    MFA_POSTGRES_CONNINFO="host=... port=... user=postgres dbname=mfa" \
        /usr/bin/python3 -m pytest --noconftest \
        tests/integration/test_schema_privileges.py

Run with Debian's /usr/bin/python3 (python3-psycopg2, python3-pytest).
"""
import glob
import os
import uuid
from datetime import datetime, timedelta, timezone

import psycopg2
import psycopg2.errors
import pytest

ADMIN_DSN = os.environ.get("MFA_POSTGRES_CONNINFO", "")
if not ADMIN_DSN:
    pytest.skip("MFA_POSTGRES_CONNINFO is not set", allow_module_level=True)

SCHEMA_DIR = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "schema"))
ROLES = ("mfa_worker", "mfa_portal", "mfa_operator")
VIEWS = ("mfa.portal_users", "mfa.login_status", "mfa.delivery_status")
# The tables of 002/003 the workers use (later migrations may add more).
WORKER_TABLES = ("mfa.inbox", "mfa.users", "mfa.logins", "mfa.codes",
                 "mfa.code_requests", "mfa.verify_failures", "mfa.deliveries")
Denied = psycopg2.errors.InsufficientPrivilege

# Every row this module writes has a contact_id with this prefix.
PREFIX = "schema-priv-%s-" % uuid.uuid4().hex[:8]


def connect(role=None, dbname=None):
    """The admin conninfo, as another user and/or database."""
    kw = {}
    if role:
        kw["user"] = role
    if dbname:
        kw["dbname"] = dbname
    conn = psycopg2.connect(ADMIN_DSN, **kw)
    conn.autocommit = True
    return conn


def q(conn, sql, *params):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def one(conn, sql, *params):
    rows = q(conn, sql, *params)
    assert len(rows) == 1, rows
    return rows[0]


def scalar(conn, sql, *params):
    return one(conn, sql, *params)[0]


def denied(conn, sql, *params, exc=Denied):
    with pytest.raises(exc):
        q(conn, sql, *params)


def schema_files():
    files = sorted(f for f in glob.glob(os.path.join(SCHEMA_DIR, "*.sql"))
                   if os.path.basename(f)[0].isdigit())
    assert files, "no migrations in %s" % SCHEMA_DIR
    return files


def migrate(conn):
    """Applies the files not yet in mfa.schema_migrations, each in one
    transaction with its ledger row, under mfactl migrate's advisory lock:
    the same ledger, so mfactl and this agree on what was applied."""
    conn.autocommit = True
    q(conn, "SELECT pg_advisory_lock(hashtext('mfa.migrate'))")
    try:
        q(conn, "CREATE SCHEMA IF NOT EXISTS mfa")
        q(conn, "CREATE TABLE IF NOT EXISTS mfa.schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())")
        for path in schema_files():
            version = os.path.basename(path)[:-4]
            if q(conn, "SELECT 1 FROM mfa.schema_migrations "
                       "WHERE version = %s", version):
                continue
            with open(path, encoding="utf-8") as f:
                sql = f.read()
            conn.autocommit = False
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)  # no parameters: '%' stays as it is
                    cur.execute("INSERT INTO mfa.schema_migrations (version) "
                                "VALUES (%s)", (version,))
                conn.commit()
            except Exception:
                conn.rollback()
                raise
            finally:
                conn.autocommit = True
    finally:
        q(conn, "SELECT pg_advisory_unlock(hashtext('mfa.migrate'))")


@pytest.fixture(scope="module")
def admin():
    conn = connect()
    # Normally migrated already (conftest runs mfactl migrate); a bare
    # database is brought up to date the way mfactl would do it.
    if scalar(conn, "SELECT to_regclass('mfa.portal_users')") is None:
        migrate(conn)
    yield conn
    cid = PREFIX + "%"
    q(conn, "DELETE FROM mfa.deliveries WHERE contact_id LIKE %s", cid)
    q(conn, "DELETE FROM mfa.verify_failures WHERE contact_id LIKE %s", cid)
    q(conn, "DELETE FROM mfa.code_requests WHERE contact_id LIKE %s", cid)
    q(conn, "DELETE FROM mfa.logins WHERE contact_id LIKE %s", cid)
    q(conn, "DELETE FROM mfa.users WHERE contact_id LIKE %s", cid)
    q(conn, "DELETE FROM mfa.audit WHERE contact_id LIKE %s", cid)
    q(conn, "DELETE FROM mfa.inbox WHERE consumer LIKE %s", cid)
    q(conn, "DELETE FROM mfa.settings WHERE name LIKE %s", cid)
    conn.close()


@pytest.fixture(scope="module")
def portal(admin):
    conn = connect("mfa_portal")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def worker(admin):
    conn = connect("mfa_worker")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def operator(admin):
    conn = connect("mfa_operator")
    yield conn
    conn.close()


def new_cid():
    return PREFIX + uuid.uuid4().hex[:12]


@pytest.fixture
def user(admin):
    """A committed portal user with a confirmed email and a valid phone."""
    cid = new_cid()
    q(admin, "INSERT INTO mfa.users (contact_id, organization_id, "
             "display_name, email, email_status, email_confirmed, "
             "phone_e164, phone_status, phone_type, phone_sms_capable) "
             "VALUES (%s, 'org-1', 'Jane', 'jane@example.com', 'valid', "
             "true, '+31612345678', 'valid', 'mobile', true)", cid)
    return cid


def relations(conn, kinds):
    return [r[0] for r in q(
        conn, "SELECT c.oid::regclass::text FROM pg_class c "
              "JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE n.nspname = 'mfa' AND c.relkind::text = ANY(%s) "
              "ORDER BY 1", list(kinds))]


# ---------------------------------------------------------------- roles

def test_roles_exist_with_login_and_no_power(admin):
    rows = {r[0]: r[1:] for r in q(
        admin, "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, "
               "rolcreatedb, rolbypassrls FROM pg_roles "
               "WHERE rolname = ANY(%s)", list(ROLES))}
    assert sorted(rows) == sorted(ROLES)
    for role, (login, sup, createrole, createdb, bypass) in rows.items():
        assert login, role
        assert not (sup or createrole or createdb or bypass), role
    for role in ROLES:
        assert scalar(admin, "SELECT has_schema_privilege(%s, 'mfa', "
                             "'USAGE')", role), role
        assert not scalar(admin, "SELECT has_schema_privilege(%s, 'mfa', "
                                 "'CREATE')", role), role


def test_views_have_the_contract_columns(admin):
    want = {
        "portal_users": ["contact_id", "organization_id", "display_name",
                         "email", "email_confirmed", "phone_e164",
                         "phone_status", "enabled", "updated_at"],
        "login_status": ["login_id", "contact_id", "status", "methods",
                         "created_at", "expires_at", "verified_at",
                         "attempts_left"],
        "delivery_status": ["delivery_id", "login_id", "channel", "status",
                            "attempts", "last_error", "provider_message_id",
                            "created_at", "sent_at"],
    }
    for view, cols in want.items():
        got = [r[0] for r in q(
            admin, "SELECT column_name FROM information_schema.columns "
                   "WHERE table_schema = 'mfa' AND table_name = %s "
                   "ORDER BY ordinal_position", view)]
        assert got == cols, view


# ---------------------------------------------------------------- portal

def test_portal_reads_the_views(portal, user):
    row = one(portal, "SELECT contact_id, email, email_confirmed, "
                      "phone_e164, phone_status, enabled "
                      "FROM mfa.portal_users WHERE contact_id = %s", user)
    assert row == (user, "jane@example.com", True, "+31612345678", "valid",
                   True)
    q(portal, "SELECT * FROM mfa.login_status LIMIT 1")
    q(portal, "SELECT * FROM mfa.delivery_status LIMIT 1")


def test_portal_cannot_write_through_the_views(portal, admin, user):
    denied(portal, "UPDATE mfa.portal_users SET email = 'evil@example.com' "
                   "WHERE contact_id = %s", user)
    denied(portal, "UPDATE mfa.portal_users SET phone_e164 = '+15005550006' "
                   "WHERE contact_id = %s", user)
    denied(portal, "INSERT INTO mfa.portal_users (contact_id, "
                   "organization_id, email) VALUES (%s, 'o', 'e@x.org')",
           new_cid())
    denied(portal, "DELETE FROM mfa.portal_users WHERE contact_id = %s", user)
    denied(portal, "UPDATE mfa.login_status SET status = 'verified'")
    denied(portal, "UPDATE mfa.delivery_status SET status = 'sent'")
    assert one(admin, "SELECT email, phone_e164 FROM mfa.users "
                      "WHERE contact_id = %s", user) == \
        ("jane@example.com", "+31612345678")


def test_portal_cannot_touch_the_tables(portal, user):
    denied(portal, "SELECT * FROM mfa.users")
    denied(portal, "SELECT email FROM mfa.users WHERE contact_id = %s", user)
    denied(portal, "UPDATE mfa.users SET email = 'evil@example.com' "
                   "WHERE contact_id = %s", user)
    denied(portal, "UPDATE mfa.users SET phone_e164 = '+15005550006', "
                   "phone_status = 'valid' WHERE contact_id = %s", user)
    denied(portal, "INSERT INTO mfa.users (contact_id, organization_id, "
                   "email, email_status) "
                   "VALUES (%s, 'o', 'e@x.org', 'valid')", new_cid())
    denied(portal, "SELECT * FROM mfa.codes")
    denied(portal, "SELECT * FROM mfa.settings")
    denied(portal, "SELECT name FROM mfa.settings")


def test_portal_has_nothing_but_select_on_the_views(admin):
    """Every table and sequence of the schema, present and future."""
    for rel in relations(admin, "rpv"):
        any_col = scalar(admin, "SELECT has_any_column_privilege("
                                "'mfa_portal', %s::regclass, "
                                "'SELECT, INSERT, UPDATE, REFERENCES')", rel)
        write = scalar(admin, "SELECT has_table_privilege('mfa_portal', "
                              "%s::regclass, 'INSERT, UPDATE, DELETE, "
                              "TRUNCATE, REFERENCES, TRIGGER')", rel)
        assert not write, rel
        assert any_col == (rel in VIEWS), rel
        if rel in VIEWS:
            assert not scalar(admin, "SELECT has_any_column_privilege("
                                     "'mfa_portal', %s::regclass, "
                                     "'INSERT, UPDATE')", rel), rel
    for seq in relations(admin, "S"):
        assert not scalar(admin, "SELECT has_sequence_privilege("
                                 "'mfa_portal', %s::regclass, "
                                 "'USAGE, SELECT, UPDATE')", seq), seq


def test_views_are_read_only_even_for_their_owner(admin, user):
    """Simple views are auto-updatable in PostgreSQL; an INSTEAD OF
    trigger refuses every write, so a privilege granted by mistake later
    still cannot turn a view into a way to change an email or phone."""
    FNS = psycopg2.errors.FeatureNotSupported
    denied(admin, "UPDATE mfa.portal_users SET email = 'x@example.com' "
                  "WHERE contact_id = %s", user, exc=FNS)
    denied(admin, "INSERT INTO mfa.portal_users (contact_id, "
                  "organization_id) VALUES (%s, 'o')", new_cid(), exc=FNS)
    denied(admin, "DELETE FROM mfa.portal_users WHERE contact_id = %s",
           user, exc=FNS)
    assert scalar(admin, "SELECT email FROM mfa.users WHERE contact_id = %s",
                  user) == "jane@example.com"


# ---------------------------------------------------------------- worker

def test_worker_inserts_and_updates_a_user(worker, portal):
    cid = new_cid()
    q(worker, "INSERT INTO mfa.users (contact_id, organization_id, "
              "email, email_status, phone_e164, phone_status, phone_type, "
              "phone_sms_capable, country, last_applied_at) "
              "VALUES (%s, 'org-2', 'a@example.com', 'valid', "
              "'+31612345678', 'valid', 'mobile', true, 'NL', now()) "
              "ON CONFLICT (contact_id) DO NOTHING RETURNING 1", cid)
    # contact-sync reads the row FOR UPDATE (needs UPDATE on some column)
    worker.autocommit = False
    try:
        q(worker, "SELECT email FROM mfa.users WHERE contact_id = %s "
                  "FOR UPDATE", cid)
        q(worker, "UPDATE mfa.users SET email = 'b@example.com', "
                  "email_confirmed = false, updated_at = now() "
                  "WHERE contact_id = %s", cid)
        worker.commit()
    finally:
        worker.autocommit = True
    q(worker, "UPDATE mfa.users SET email_confirmed = true "
              "WHERE contact_id = %s", cid)
    q(worker, "UPDATE mfa.users SET phone_e164 = NULL, "
              "phone_status = 'invalid', phone_reason = 'too short', "
              "phone_type = NULL, phone_sms_capable = false, "
              "phone_sms_blocked = NULL WHERE contact_id = %s", cid)
    assert one(portal, "SELECT email, email_confirmed, phone_e164, "
                       "phone_status FROM mfa.portal_users "
                       "WHERE contact_id = %s", cid) == \
        ("b@example.com", True, None, "invalid")


def test_worker_cannot_rewrite_keys_history_or_hashes(worker, user):
    denied(worker, "UPDATE mfa.users SET contact_id = contact_id || 'x' "
                   "WHERE contact_id = %s", user)
    denied(worker, "UPDATE mfa.users SET created_at = now() "
                   "WHERE contact_id = %s", user)
    lid = str(uuid.uuid4())
    q(worker, "INSERT INTO mfa.logins (login_id, contact_id, status, "
              "methods, expires_at, max_attempts) VALUES (%s, %s, "
              "'pending', '{email}', now() + interval '15 min', 5)", lid, user)
    denied(worker, "UPDATE mfa.logins SET expires_at = now() + "
                   "interval '1 day' WHERE login_id = %s", lid)
    denied(worker, "UPDATE mfa.logins SET max_attempts = 1000 "
                   "WHERE login_id = %s", lid)
    did = str(uuid.uuid4())
    code_id = scalar(worker, "INSERT INTO mfa.codes (login_id, delivery_id, "
                             "channel, code_hash, key_id, expires_at) "
                             "VALUES (%s, %s, 'email', %s, 'k1', "
                             "now() + interval '5 min') RETURNING code_id",
                     lid, did, psycopg2.Binary(b"\1" * 32))
    denied(worker, "UPDATE mfa.codes SET code_hash = %s WHERE code_id = %s",
           psycopg2.Binary(b"\2" * 32), code_id)
    denied(worker, "UPDATE mfa.codes SET expires_at = now() + "
                   "interval '1 day' WHERE code_id = %s", code_id)
    q(worker, "UPDATE mfa.codes SET used_at = now() WHERE code_id = %s",
      code_id)
    q(worker, "UPDATE mfa.logins SET status = 'verified', "
              "verified_at = now(), tries = tries + 1 WHERE login_id = %s",
      lid)
    # the audit trail is append-only
    q(worker, "INSERT INTO mfa.audit (actor, action, contact_id, login_id) "
              "VALUES ('mfa-codes', 'login.verified', %s, %s)", user, lid)
    denied(worker, "UPDATE mfa.audit SET action = 'nothing' "
                   "WHERE contact_id = %s", user)
    denied(worker, "DELETE FROM mfa.audit WHERE contact_id = %s", user)
    # settings are the operators'; the portal's views are the portal's
    q(worker, "SELECT name, value, secret_sealed FROM mfa.settings")
    denied(worker, "INSERT INTO mfa.settings (name) VALUES (%s)", new_cid())
    denied(worker, "UPDATE mfa.settings SET secret_sealed = 'x'")
    denied(worker, "UPDATE mfa.portal_users SET email = 'x@example.com'")


def test_worker_runtime_and_dispatch_statements(worker, user):
    consumer = new_cid()
    eid = str(uuid.uuid4())
    assert q(worker, "INSERT INTO mfa.inbox (consumer, event_id, event_type) "
                     "VALUES (%s, %s, 'contact.changed') "
                     "ON CONFLICT DO NOTHING RETURNING 1",
             consumer, eid) == [(1,)]
    assert q(worker, "INSERT INTO mfa.inbox (consumer, event_id, event_type) "
                     "VALUES (%s, %s, 'contact.changed') "
                     "ON CONFLICT DO NOTHING RETURNING 1",
             consumer, eid) == []
    q(worker, "UPDATE mfa.inbox SET outputs = '[]' "
              "WHERE consumer = %s AND event_id = %s", consumer, eid)
    denied(worker, "UPDATE mfa.inbox SET received_at = now() "
                   "WHERE consumer = %s", consumer)
    q(worker, "DELETE FROM mfa.inbox WHERE consumer = %s AND event_id = %s",
      consumer, eid)

    did = str(uuid.uuid4())
    q(worker, "INSERT INTO mfa.deliveries (delivery_id, login_id, "
              "contact_id, kind, channel, status) "
              "VALUES (%s, NULL, %s, 'notice', 'email', 'queued')", did, user)
    q(worker, "UPDATE mfa.deliveries SET status = 'sent', "
              "attempts = attempts + 1, provider_message_id = 'SM1', "
              "sent_at = now(), finished_at = now(), updated_at = now() "
              "WHERE delivery_id = %s", did)
    denied(worker, "UPDATE mfa.deliveries SET contact_id = 'x' "
                   "WHERE delivery_id = %s", did)
    q(worker, "INSERT INTO mfa.code_requests (contact_id, channel, "
              "dest_hash, region, outcome) VALUES (%s, 'sms', %s, 'NL', "
              "'sent')", user, psycopg2.Binary(b"\3" * 32))
    q(worker, "INSERT INTO mfa.verify_failures (contact_id) VALUES (%s)",
      user)
    q(worker, "UPDATE mfa.users SET phone_sms_blocked = '21610 unsubscribed'"
              " WHERE contact_id = %s", user)


def test_worker_update_is_granted_per_column(admin):
    """Never table-wide (a column REVOKE could not take it back); on
    mfa.users every column but the key and created_at."""
    for t in WORKER_TABLES + ("mfa.audit", "mfa.settings"):
        assert not scalar(admin, "SELECT has_table_privilege('mfa_worker', "
                                 "%s::regclass, 'UPDATE, TRUNCATE')", t), t
    cols = q(admin, "SELECT attname, has_column_privilege('mfa_worker', "
                    "attrelid, attname, 'UPDATE') FROM pg_attribute "
                    "WHERE attrelid = 'mfa.users'::regclass AND attnum > 0 "
                    "AND NOT attisdropped")
    for name, can in cols:
        assert can == (name not in ("contact_id", "created_at")), name


def test_users_checks_keep_unusable_destinations_out(worker):
    Check = psycopg2.errors.CheckViolation
    base = ("INSERT INTO mfa.users (contact_id, organization_id, email, "
            "email_status, email_confirmed, phone_e164, phone_status, "
            "phone_sms_capable) VALUES (%s, 'o', %s, %s, %s, %s, %s, %s)")
    bad = [
        ("e@x.org", "invalid", False, None, "missing", False),
        (None, "valid", False, None, "missing", False),
        (None, "missing", True, None, "missing", False),
        (None, "missing", False, "+31612345678", "invalid", False),
        (None, "missing", False, None, "valid", False),
        (None, "missing", False, "0612345678", "valid", False),
        (None, "missing", False, None, "invalid", True),
        (None, "unknown", False, None, "missing", False),
    ]
    for row in bad:
        denied(worker, base, new_cid(), *row, exc=Check)
    q(worker, base, new_cid(), None, "missing", False, None, "missing", False)


# ---------------------------------------------------------------- operator

def test_operator_reads_views_and_manages_settings(operator, user):
    name = new_cid()
    for view in VIEWS:
        q(operator, "SELECT * FROM %s LIMIT 1" % view)
    denied(operator, "SELECT * FROM mfa.users")
    denied(operator, "UPDATE mfa.portal_users SET email = 'x@example.com' "
                     "WHERE contact_id = %s", user)
    q(operator, "INSERT INTO mfa.settings (name, value, secret_sealed, "
                "updated_by) VALUES (%s, '{\"from\": \"+15005550006\"}', "
                "'sealed-1', 'op')", name)
    # an upsert must pass the secret as a value: reading excluded.* counts
    # as reading the column, which operators may not
    q(operator, "INSERT INTO mfa.settings (name, value, secret_sealed) "
                "VALUES (%s, '{}', %s) ON CONFLICT (name) DO UPDATE "
                "SET value = excluded.value, secret_sealed = %s, "
                "updated_at = now()", name, "sealed-2", "sealed-2")
    assert one(operator, "SELECT name, value FROM mfa.settings "
                         "WHERE name = %s", name) == (name, {})
    denied(operator, "SELECT secret_sealed FROM mfa.settings "
                     "WHERE name = %s", name)
    denied(operator, "SELECT * FROM mfa.settings")
    q(operator, "UPDATE mfa.settings SET secret_sealed = NULL "
                "WHERE name = %s", name)
    q(operator, "DELETE FROM mfa.settings WHERE name = %s", name)


# ---------------------------------------------------------------- views

def test_login_status_derives_expiry_and_attempts(admin, portal, user):
    now = datetime.now(timezone.utc)
    rows = [  # stored status, expires, tries, max -> shown status, left
        ("code_sent", now - timedelta(minutes=1), 2, 5, "expired", 3),
        ("pending", now - timedelta(minutes=1), 0, 5, "expired", 5),
        ("code_sent", now + timedelta(minutes=10), 7, 5, "code_sent", 0),
        ("verified", now - timedelta(minutes=1), 1, 5, "verified", 4),
        ("locked", now + timedelta(minutes=10), 5, 5, "locked", 0),
    ]
    for stored, exp, tries, mx, shown, left in rows:
        lid = str(uuid.uuid4())
        q(admin, "INSERT INTO mfa.logins (login_id, contact_id, status, "
                 "methods, created_at, expires_at, tries, max_attempts) "
                 "VALUES (%s, %s, %s, '{email,sms}', %s, %s, %s, %s)",
          lid, user, stored, exp - timedelta(minutes=15), exp, tries, mx)
        assert one(portal, "SELECT status, attempts_left, methods "
                           "FROM mfa.login_status WHERE login_id = %s",
                   lid) == (shown, left, ["email", "sms"]), stored


def test_one_live_code_per_login(worker, user):
    lid = str(uuid.uuid4())
    q(worker, "INSERT INTO mfa.logins (login_id, contact_id, status, "
              "methods, expires_at, max_attempts) VALUES (%s, %s, "
              "'code_sent', '{sms}', now() + interval '15 min', 5)", lid, user)
    ins = ("INSERT INTO mfa.codes (login_id, delivery_id, channel, "
           "code_hash, key_id, expires_at) VALUES (%s, %s, 'sms', %s, 'k1', "
           "now() + interval '5 min')")
    q(worker, ins, lid, str(uuid.uuid4()), psycopg2.Binary(b"\1" * 32))
    denied(worker, ins, lid, str(uuid.uuid4()), psycopg2.Binary(b"\2" * 32),
           exc=psycopg2.errors.UniqueViolation)
    # a resend: supersede, then insert, in one transaction
    worker.autocommit = False
    try:
        q(worker, "UPDATE mfa.codes SET superseded_at = now() "
                  "WHERE login_id = %s AND used_at IS NULL "
                  "AND superseded_at IS NULL", lid)
        q(worker, ins, lid, str(uuid.uuid4()), psycopg2.Binary(b"\2" * 32))
        worker.commit()
    finally:
        worker.autocommit = True
    assert scalar(worker, "SELECT count(*) FROM mfa.codes WHERE login_id = %s",
                  lid) == 2


# ------------------------------------------------- a second database

def test_migrations_apply_to_a_second_database_of_the_cluster(admin):
    """Roles are cluster-wide and already exist: the files must still
    apply, once each, in order, each in one transaction; and 001 alone
    may be applied again."""
    db = "mfa_privtest_" + uuid.uuid4().hex[:10]
    q(admin, "CREATE DATABASE %s" % db)
    try:
        conn = connect(dbname=db)
        try:
            migrate(conn)
            applied = [r[0] for r in q(conn, "SELECT version FROM "
                                             "mfa.schema_migrations "
                                             "ORDER BY 1")]
            assert applied == [os.path.basename(f)[:-4]
                               for f in schema_files()]
            with open(schema_files()[0], encoding="utf-8") as f:
                sql = f.read()
            conn.autocommit = False
            with conn.cursor() as cur:
                cur.execute(sql)
            conn.commit()
            conn.autocommit = True
        finally:
            conn.close()
        p = connect("mfa_portal", dbname=db)
        try:
            q(p, "SELECT * FROM mfa.portal_users")
            denied(p, "SELECT * FROM mfa.users")
            denied(p, "UPDATE mfa.portal_users SET email = 'x@example.com'")
        finally:
            p.close()
        w = connect("mfa_worker", dbname=db)
        try:
            q(w, "INSERT INTO mfa.users (contact_id, organization_id) "
                 "VALUES ('c1', 'o1')")
            q(w, "UPDATE mfa.users SET email = 'a@example.com', "
                 "email_status = 'valid' WHERE contact_id = 'c1'")
        finally:
            w.close()
    finally:
        q(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
