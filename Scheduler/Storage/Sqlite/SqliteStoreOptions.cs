namespace DurableTask.Scheduler.Storage.Sqlite;

/// <summary>
/// Settings of the SQLite store, bound from <c>Scheduler:Sqlite</c>; the folder is <c>Scheduler:DataPath</c>.
/// <code>
/// "Scheduler": { "Store": "sqlite", "DataPath": "./data",
///                "Sqlite": { "Synchronous": "Normal", "IntegrityCheckOnOpen": false } }
/// </code>
/// </summary>
public sealed class SqliteStoreOptions
{
    public const string Section = "Scheduler:Sqlite";

    /// <summary>
    /// SQLite's <c>synchronous</c> setting. <c>Normal</c>: a committed batch survives a crash or kill of the scheduler
    /// process, and the last commits before a power loss or OS crash may be lost (the database stays consistent).
    /// <c>Full</c> (or <c>Extra</c>): every commit is flushed to the disk before it is acknowledged, so it also survives
    /// a power loss, at the price of one fsync per group commit.
    /// </summary>
    public string Synchronous { get; set; } = "Normal";

    /// <summary>Runs <c>PRAGMA quick_check</c> when a hub's database is opened (reads the whole file: slow for large databases).</summary>
    public bool IntegrityCheckOnOpen { get; set; }

    internal string SynchronousPragma => Synchronous.ToUpperInvariant() switch
    {
        "NORMAL" => "NORMAL",
        "FULL" => "FULL",
        "EXTRA" => "EXTRA",
        _ => throw new InvalidOperationException(
            $"Scheduler:Sqlite:Synchronous '{Synchronous}' is not supported: use Normal (survives process crashes) or Full (also survives power loss)."),
    };

    internal void Validate() => _ = SynchronousPragma;
}
