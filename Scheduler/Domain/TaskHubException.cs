namespace DurableTask.Scheduler.Domain;

/// <summary>Why the scheduler refused or could not carry out an operation, independent of how a caller reached it.</summary>
public enum TaskHubErrorKind
{
    /// <summary>The task hub or orchestration instance does not exist.</summary>
    NotFound,

    /// <summary>An instance with that id exists and may not be replaced.</summary>
    AlreadyExists,

    /// <summary>The instance is not in a state that allows the operation (e.g. purging a running instance).</summary>
    WrongState,

    /// <summary>The request breaks a rule: a missing or malformed field, a value out of range.</summary>
    Invalid,

    /// <summary>A payload is larger than Scheduler:MaxPayloadBytes allows.</summary>
    TooLarge,

    /// <summary>The task hub's store is down or did not confirm a change in time; retrying later may succeed.</summary>
    StoreUnavailable,

    /// <summary>The task hub is owned by (or moving to) another scheduler replica; retrying may succeed.</summary>
    Moved,

    /// <summary>A configured limit was reached (e.g. the number of dynamic task hubs).</summary>
    LimitReached,
}

/// <summary>
/// An operation's outcome other than success, as the task hub reports it: a kind and a message that names the problem
/// (and the limit, where there is one). The gRPC service and the JSON API each translate it for their callers.
/// </summary>
public sealed class TaskHubException(TaskHubErrorKind kind, string message) : Exception(message)
{
    public TaskHubErrorKind Kind { get; } = kind;

    public static TaskHubException InstanceNotFound(string instanceId) =>
        new(TaskHubErrorKind.NotFound, $"orchestration instance '{instanceId}' not found");

    public static TaskHubException Invalid(string message) => new(TaskHubErrorKind.Invalid, message);

    public static TaskHubException TooLarge(string message) => new(TaskHubErrorKind.TooLarge, message);

    public static TaskHubException WrongState(string message) => new(TaskHubErrorKind.WrongState, message);

    public static TaskHubException AlreadyExists(string message) => new(TaskHubErrorKind.AlreadyExists, message);
}
