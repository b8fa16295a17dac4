namespace DurableTask.Scheduler.Storage.Sqlite;

/// <summary>
/// The database layout, as a list of upgrade steps. Version N of the schema is what steps 1..N create; a database
/// of an older version is upgraded in one transaction when opened. Steps are only ever appended, never edited
/// (a golden database of every released version is loaded by the tests).
/// </summary>
static class SqliteSchema
{
    /// <summary>Marks a database as the scheduler's (<c>PRAGMA application_id</c>): ASCII "DTS1".</summary>
    public const int ApplicationId = 0x44545331;

    public static int CurrentVersion => Steps.Length;

    /// <summary>Step i (0-based) upgrades version i to version i + 1.</summary>
    public static readonly string[] Steps =
    [
        // Version 1.
        // instances: one row per orchestration instance; the record is an InstanceRecord message, the other columns
        //   copy its query fields (UTC ticks) so queries can be served from the database.
        // history: HistoryBlock messages appended per commit; the rowid orders them (new rows get the largest rowid).
        // entities: one row per entity; the record is an EntityRecord message.
        """
        CREATE TABLE schema_version (
            version INTEGER NOT NULL
        );
        INSERT INTO schema_version (version) VALUES (0);

        CREATE TABLE instances (
            instance_id TEXT NOT NULL PRIMARY KEY,
            name TEXT NOT NULL,
            status INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            last_updated_at INTEGER NOT NULL,
            completed_at INTEGER NULL,
            parent_instance_id TEXT NULL,
            history_generation INTEGER NOT NULL,
            record BLOB NOT NULL
        );
        CREATE INDEX instances_status ON instances (status, created_at);
        CREATE INDEX instances_name ON instances (name);
        CREATE INDEX instances_created_at ON instances (created_at);
        CREATE INDEX instances_completed_at ON instances (completed_at) WHERE completed_at IS NOT NULL;
        CREATE INDEX instances_parent ON instances (parent_instance_id) WHERE parent_instance_id IS NOT NULL;

        CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            instance_id TEXT NOT NULL,
            generation INTEGER NOT NULL,
            block BLOB NOT NULL
        );
        CREATE INDEX history_instance ON history (instance_id);

        CREATE TABLE entities (
            instance_id TEXT NOT NULL PRIMARY KEY,
            last_modified INTEGER NOT NULL,
            record BLOB NOT NULL
        );
        """,

        // Version 2.
        // instance_inputs: an instance's input, written when its row is written whole. The updates that follow leave
        //   it alone and, while the input stays the same, their record leaves it out, so an orchestration with a
        //   large input does not rewrite it with every change (in its own table, as SQLite rewrites the whole row,
        //   overflow pages included, whenever a column of it changes). A record that holds an input (every row of
        //   version 1) wins over this table.
        """
        CREATE TABLE instance_inputs (
            instance_id TEXT NOT NULL PRIMARY KEY,
            input TEXT NOT NULL
        );
        """,

        // Version 3.
        // An unfinished instance that left memory waiting only for a client or a timer is parked: its status column
        // holds its status plus 100 (its record keeps the status), so a start leaves it in the file. Writing its
        // status again unparks it.
        // parked_timers: when the next timer of a parked instance is due, so a start arms it without reading the
        //   instance. A row is deleted when its instance is unparked or deleted.
        """
        CREATE TABLE parked_timers (
            instance_id TEXT NOT NULL PRIMARY KEY,
            due INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX parked_timers_due ON parked_timers (due);
        """,

        // Version 4.
        // instance_counts: how many instances there are per name, top level or not, and status (parked or not), kept
        //   by triggers in the transaction that changes them, so a count by name and status reads a few rows rather
        //   than every instance of that name. Filled from the instances when a version 3 database is upgraded.
        // instances_name goes: counts by name read instance_counts, and pages walk the ids, testing the name.
        """
        CREATE TABLE instance_counts (
            name TEXT NOT NULL,
            top_level INTEGER NOT NULL,
            status INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (name, top_level, status)
        ) WITHOUT ROWID;
        INSERT INTO instance_counts (name, top_level, status, n)
            SELECT name, parent_instance_id IS NULL, status % 100, count(*) FROM instances GROUP BY 1, 2, 3;
        CREATE TRIGGER instances_counted AFTER INSERT ON instances BEGIN
            INSERT INTO instance_counts (name, top_level, status, n)
                VALUES (new.name, new.parent_instance_id IS NULL, new.status % 100, 1)
                ON CONFLICT (name, top_level, status) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER instances_uncounted AFTER DELETE ON instances BEGIN
            UPDATE instance_counts SET n = n - 1
                WHERE name = old.name AND top_level = (old.parent_instance_id IS NULL) AND status = old.status % 100;
        END;
        CREATE TRIGGER instances_recounted AFTER UPDATE OF name, status, parent_instance_id ON instances
            WHEN old.status % 100 <> new.status % 100 OR old.name <> new.name
                OR (old.parent_instance_id IS NULL) <> (new.parent_instance_id IS NULL)
        BEGIN
            UPDATE instance_counts SET n = n - 1
                WHERE name = old.name AND top_level = (old.parent_instance_id IS NULL) AND status = old.status % 100;
            INSERT INTO instance_counts (name, top_level, status, n)
                VALUES (new.name, new.parent_instance_id IS NULL, new.status % 100, 1)
                ON CONFLICT (name, top_level, status) DO UPDATE SET n = n + 1;
        END;
        DROP INDEX instances_name;
        """,
    ];
}
