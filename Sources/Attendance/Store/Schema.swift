import AttendanceCore
import GRDB

/// The database schema: a contract with the daemon, the connector and the exports.
/// Names are fixed; add columns and tables only in new migrations, never edit a shipped one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE school_class(
                        code TEXT PRIMARY KEY,
                        grade_code TEXT NOT NULL,
                        name TEXT);

                    CREATE TABLE student(
                        code TEXT PRIMARY KEY,
                        full_name TEXT NOT NULL,
                        class_code TEXT NOT NULL REFERENCES school_class(code),
                        date_of_birth TEXT,
                        gender TEXT,
                        active INTEGER NOT NULL DEFAULT 1,
                        created_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL);
                    CREATE INDEX student_class ON student(class_code);

                    CREATE TABLE consent(
                        id INTEGER PRIMARY KEY,
                        student_code TEXT NOT NULL REFERENCES student(code) ON DELETE CASCADE,
                        guardian_name TEXT NOT NULL,
                        relation TEXT NOT NULL,
                        consent_date TEXT NOT NULL,
                        scope TEXT NOT NULL,
                        recorded_by TEXT NOT NULL,
                        recorded_at TEXT NOT NULL,
                        revoked_at TEXT,
                        revoked_by TEXT);
                    CREATE INDEX consent_student ON consent(student_code);

                    CREATE TABLE enrolment(
                        id INTEGER PRIMARY KEY,
                        student_code TEXT NOT NULL REFERENCES student(code) ON DELETE CASCADE,
                        sealed_embedding BLOB NOT NULL,
                        quality TEXT,
                        source TEXT,
                        created_at TEXT NOT NULL,
                        created_by TEXT NOT NULL);
                    CREATE INDEX enrolment_student ON enrolment(student_code);

                    CREATE TABLE attendance_event(
                        id TEXT PRIMARY KEY,
                        student_code TEXT NOT NULL REFERENCES student(code) ON DELETE CASCADE,
                        school_day TEXT NOT NULL,
                        session TEXT NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('check_in', 'check_out')),
                        status TEXT NOT NULL CHECK (status IN ('present', 'late', 'absent', 'excused')),
                        occurred_at TEXT,
                        camera TEXT,
                        distance REAL,
                        version INTEGER NOT NULL DEFAULT 1,
                        cancelled INTEGER NOT NULL DEFAULT 0,
                        UNIQUE(student_code, school_day, session, kind));
                    CREATE INDEX attendance_event_day ON attendance_event(school_day);

                    CREATE TABLE outbox(
                        record_id TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        event_kind TEXT NOT NULL CHECK (event_kind IN ('NEW', 'UPDATE', 'CANCEL')),
                        payload TEXT NOT NULL,
                        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'parked')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at TEXT,
                        last_error TEXT,
                        created_at TEXT NOT NULL,
                        delivered_at TEXT,
                        PRIMARY KEY(record_id, version));
                    CREATE INDEX outbox_state ON outbox(state, next_attempt_at);

                    CREATE TABLE excuse(
                        student_code TEXT NOT NULL REFERENCES student(code) ON DELETE CASCADE,
                        school_day TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        recorded_by TEXT NOT NULL,
                        recorded_at TEXT NOT NULL,
                        PRIMARY KEY(student_code, school_day));

                    CREATE TABLE audit_log(
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        at TEXT NOT NULL,
                        os_user TEXT NOT NULL,
                        action TEXT NOT NULL,
                        subject TEXT,
                        detail TEXT);
                    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
                    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
                        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

                    CREATE TABLE unknown_face(
                        id INTEGER PRIMARY KEY,
                        seen_at TEXT NOT NULL,
                        camera TEXT,
                        crop_path TEXT);
                    CREATE INDEX unknown_face_seen ON unknown_face(seen_at);

                    CREATE TABLE meta(
                        key TEXT PRIMARY KEY,
                        value TEXT NOT NULL);
                    INSERT INTO meta(key, value) VALUES ('gallery_version', '0');

                    -- Not in the shared contract, private to the store: the audit log names a student
                    -- by this random alias, so erasing the student (which deletes the alias) leaves the
                    -- append-only log with nothing that links back to the child.
                    CREATE TABLE student_alias(
                        student_code TEXT PRIMARY KEY REFERENCES student(code) ON DELETE CASCADE,
                        alias TEXT NOT NULL UNIQUE);
                    """)
        }
        // Learning from the gate: a confident sighting's embedding (sealed like an enrolment, never an
        // image) waits here for the teacher's approval; erasure and consent revocation delete it.
        m.registerMigration("v2-gate-sightings") { db in
            try db.execute(
                sql: """
                    CREATE TABLE gate_sighting(
                        id INTEGER PRIMARY KEY,
                        student_code TEXT NOT NULL UNIQUE REFERENCES student(code) ON DELETE CASCADE,
                        sealed_embedding BLOB NOT NULL,
                        distance REAL NOT NULL,
                        margin REAL NOT NULL,
                        camera TEXT NOT NULL,
                        seen_at TEXT NOT NULL);
                    """)
        }
        // The erasure register: a student erased on request is remembered by a keyed hash of the code
        // (PseudonymKey), never the code, so an old roster re-imported later cannot bring back their consent.
        m.registerMigration("v3-erasure-register") { db in
            try db.execute(
                sql: """
                    CREATE TABLE erased_student(
                        pseudonym TEXT PRIMARY KEY,
                        erased_at TEXT NOT NULL);
                    """)
        }
        // The web console's accounts and sessions. Only scrypt hashes of passwords and SHA-256 hashes of session
        // tokens are kept: a copy of the database signs nobody in.
        m.registerMigration("v4-console") { db in
            try db.execute(
                sql: """
                    CREATE TABLE console_user(
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
                        role TEXT NOT NULL CHECK (role IN ('admin', 'teacher', 'principal')),
                        password_hash TEXT NOT NULL,
                        disabled INTEGER NOT NULL DEFAULT 0,
                        created_at TEXT NOT NULL);
                    CREATE TABLE console_user_class(
                        user_id INTEGER NOT NULL REFERENCES console_user(id) ON DELETE CASCADE,
                        class_code TEXT NOT NULL,
                        PRIMARY KEY (user_id, class_code));
                    CREATE TABLE console_session(
                        token_hash TEXT PRIMARY KEY,
                        user_id INTEGER NOT NULL REFERENCES console_user(id) ON DELETE CASCADE,
                        csrf_token TEXT NOT NULL,
                        created_at TEXT NOT NULL,
                        last_seen TEXT NOT NULL);
                    """)
        }
        // Check-ins the liveness check held back (a print or a screen at the gate?): not attendance until a
        // teacher accepts one. One per student, day, session and kind; no image is kept.
        m.registerMigration("v5-review-hold") { db in
            try db.execute(
                sql: """
                    CREATE TABLE review_hold(
                        id INTEGER PRIMARY KEY,
                        student_code TEXT NOT NULL REFERENCES student(code) ON DELETE CASCADE,
                        school_day TEXT NOT NULL,
                        session TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        status TEXT NOT NULL,
                        occurred_at TEXT NOT NULL,
                        camera TEXT NOT NULL,
                        distance REAL NOT NULL,
                        liveness REAL,
                        reason TEXT NOT NULL CHECK (reason IN ('spoof', 'not_checkable')),
                        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'rejected')),
                        decided_by TEXT,
                        decided_at TEXT,
                        UNIQUE (student_code, school_day, session, kind));
                    CREATE INDEX review_hold_pending ON review_hold(state, school_day);
                    """)
        }
        // The gate's journal (#17): with `[database] backend = "postgresql"` this SQLite file is where a decision is
        // written first. Private to the store (not in the shared contract): the version of each event the school's
        // server has committed; an event without a row here, or with a lower version, is still to be sent.
        m.registerMigration("v6-journal") { db in
            try db.execute(
                sql: """
                    CREATE TABLE journal_shared(
                        record_id TEXT PRIMARY KEY REFERENCES attendance_event(id) ON DELETE CASCADE,
                        version INTEGER NOT NULL);
                    """)
        }
        // The gate's held check-ins the school's server has (#17): a hold is made here first, like a record, and the
        // journal sender moves the pending ones to the server, where any box's teacher decides them.
        m.registerMigration("v7-journal-holds") { db in
            try db.execute(
                sql: """
                    CREATE TABLE journal_shared_hold(
                        hold_id INTEGER PRIMARY KEY REFERENCES review_hold(id) ON DELETE CASCADE);
                    """)
        }
        return m
    }
}
