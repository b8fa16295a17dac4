namespace DurableTask.Scheduler.Storage.Sqlite;

/// <summary>Keeps each task hub in its own SQLite database, <c>{DataPath}/{hub}.db</c> (hub names in lower case).</summary>
public sealed class SqliteStoreProvider : IStoreProvider
{
    public const string FileExtension = ".db";

    readonly SqliteStoreOptions _options;
    readonly ILogger _logger;

    public SqliteStoreProvider(string dataPath, SqliteStoreOptions options, ILoggerFactory? loggers = null)
    {
        options.Validate();
        if (string.IsNullOrWhiteSpace(dataPath))
            throw new InvalidOperationException("Scheduler:DataPath must name a folder for the SQLite store.");
        DataPath = Path.GetFullPath(dataPath);
        _options = options;
        _logger = (ILogger?)loggers?.CreateLogger<SqliteStore>() ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    public string Name => "sqlite";

    /// <summary>Absolute folder holding the databases.</summary>
    public string DataPath { get; }

    public ITaskHubStore Open(string taskHub) => new SqliteStore(PathOf(taskHub), _options, _logger);

    /// <summary>The database file of <paramref name="taskHub"/>. Hub names are case-insensitive, file names are not: the name is lower-cased.</summary>
    public string PathOf(string taskHub) => Path.Combine(DataPath, taskHub.ToLowerInvariant() + FileExtension);

    /// <summary>Hubs that have a database in <see cref="DataPath"/> (lower-case names), e.g. dynamic hubs to recover at start.</summary>
    public Task<IReadOnlyList<string>> ListTaskHubsAsync(CancellationToken cancellationToken) => Task.FromResult(ListTaskHubs());

    public IReadOnlyList<string> ListTaskHubs() =>
        Directory.Exists(DataPath)
            ? Directory.EnumerateFiles(DataPath, "*" + FileExtension)
                .Select(Path.GetFileNameWithoutExtension)
                .OfType<string>()
                .Order(StringComparer.Ordinal)
                .ToList()
            : [];
}
