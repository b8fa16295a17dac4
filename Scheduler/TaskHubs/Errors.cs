using System.Text;
using Grpc.Core;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>Errors the scheduler answers with: the right status code and a message naming the problem and the limit.</summary>
public static class Errors
{
    public const int MaxInstanceIdLength = 100;

    public static RpcException InstanceNotFound(string instanceId) =>
        new(new Status(StatusCode.NotFound, $"orchestration instance '{instanceId}' not found"));

    public static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    public static RpcException Precondition(string message) => new(new Status(StatusCode.FailedPrecondition, message));

    public static RpcException AlreadyExists(string message) => new(new Status(StatusCode.AlreadyExists, message));

    /// <summary>Validates an instance id: 1-100 printable characters.</summary>
    public static void ValidateInstanceId(string? instanceId, string field = "instanceId")
    {
        var problem = CheckInstanceId(instanceId, field);
        if (problem is not null) throw Invalid(problem);
    }

    public static string? CheckInstanceId(string? instanceId, string field = "instanceId")
    {
        if (string.IsNullOrEmpty(instanceId)) return $"{field} is required";
        if (instanceId.Length > MaxInstanceIdLength)
            return $"{field} is {instanceId.Length} characters long; the limit is {MaxInstanceIdLength} characters";
        foreach (var c in instanceId)
        {
            if (char.IsControl(c))
                return $"{field} contains a non-printable character (U+{(int)c:X4}); only printable characters are allowed";
        }

        return null;
    }

    public static void RequireName(string? name, string field = "name")
    {
        if (string.IsNullOrWhiteSpace(name)) throw Invalid($"{field} is required");
        if (name.Length > 1024) throw Invalid($"{field} is {name.Length} characters long; the limit is 1024 characters");
    }

    /// <summary>
    /// Checks a payload against the configured limit; returns a message naming the field (and, when given, the
    /// activity, event or operation it belongs to: "the input of activity 'Greet'"), the size and the limit, or null.
    /// The name is joined in only for a violation, so the check costs no allocation on the hot path.
    /// </summary>
    public static string? CheckPayload(string? value, string field, int limit, string? name = null)
    {
        if (value is null || value.Length <= limit / 3) return null; // at most 3 UTF-8 bytes per UTF-16 char
        int size = Encoding.UTF8.GetByteCount(value);
        return size > limit
            ? $"{(name is null ? field : $"{field} '{name}'")} is {size} bytes, which exceeds the maximum payload size of {limit} bytes (Scheduler:MaxPayloadBytes)"
            : null;
    }

    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range protobuf timestamps allow.
    const long MinTimestampSeconds = -62135596800L;
    const long MaxTimestampSeconds = 253402300799L;

    /// <summary>A message naming the field when a timestamp is outside what protobuf allows, else null.</summary>
    public static string? CheckTimestamp(Google.Protobuf.WellKnownTypes.Timestamp? ts, string field) =>
        ts is null || (ts.Seconds >= MinTimestampSeconds && ts.Seconds <= MaxTimestampSeconds && ts.Nanos is >= 0 and < 1_000_000_000)
            ? null
            : $"{field} is not a valid timestamp (seconds must be between {MinTimestampSeconds} and {MaxTimestampSeconds})";

    public static void ValidatePayload(string? value, string field, int limit, string? name = null)
    {
        var problem = CheckPayload(value, field, limit, name);
        if (problem is not null) throw Invalid(problem);
    }
}
