using System.Text;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Entities;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// The rules a request must meet before a task hub acts on it, shared by the gRPC service and the JSON API: instance
/// ids, names, payload sizes, timestamps, tags and scheduled times. A violation is a <see cref="TaskHubException"/> of
/// kind <see cref="TaskHubErrorKind.Invalid"/> (<see cref="TaskHubErrorKind.TooLarge"/> for payloads) whose message
/// names the field and the limit; the <c>Check</c> forms return that message (or null) instead of throwing.
/// </summary>
public static class RequestRules
{
    public const int MaxInstanceIdLength = 100;
    public const int MaxNameLength = 1024;
    public const int MaxTags = 64;
    public const int MaxTagKeyLength = 256;
    public const int MaxTagValueLength = 1024;

    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range protobuf timestamps allow.
    const long MinTimestampSeconds = -62135596800L;
    const long MaxTimestampSeconds = 253402300799L;

    /// <summary>An instance id: 1-100 printable characters.</summary>
    public static void InstanceId(string? instanceId, string field = "instanceId")
    {
        var problem = CheckInstanceId(instanceId, field);
        if (problem is not null) throw TaskHubException.Invalid(problem);
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

    /// <summary>An orchestration, event or operation name: present, not blank, at most 1024 characters.</summary>
    public static void Name(string? name, string field = "name")
    {
        if (string.IsNullOrWhiteSpace(name)) throw TaskHubException.Invalid($"{field} is required");
        if (name.Length > MaxNameLength) throw TaskHubException.Invalid($"{field} is {name.Length} characters long; the limit is {MaxNameLength} characters");
    }

    /// <summary>See <see cref="PayloadLimit.Check"/>.</summary>
    public static string? CheckPayload(string? value, string field, int limit, string? name = null) => PayloadLimit.Check(value, field, limit, name);

    public static void Payload(string? value, string field, int limit, string? name = null)
    {
        var problem = CheckPayload(value, field, limit, name);
        if (problem is not null) throw TaskHubException.TooLarge(problem);
    }

    /// <summary>A message naming the field when a timestamp is outside what protobuf allows, else null.</summary>
    public static string? CheckTimestamp(Timestamp? ts, string field) =>
        ts is null || (ts.Seconds >= MinTimestampSeconds && ts.Seconds <= MaxTimestampSeconds && ts.Nanos is >= 0 and < 1_000_000_000)
            ? null
            : $"{field} is not a valid timestamp (seconds must be between {MinTimestampSeconds} and {MaxTimestampSeconds})";

    public static void Timestamp(Timestamp ts, string field)
    {
        var problem = CheckTimestamp(ts, field);
        if (problem is not null) throw TaskHubException.Invalid(problem);
    }

    /// <summary>
    /// A scheduled start: a valid timestamp, and null (start now) unless it lies in the future. Clients that always
    /// send a start time use the Unix epoch for "now".
    /// </summary>
    public static Timestamp? Scheduled(Timestamp? ts, string field)
    {
        if (ts is null) return null;
        Timestamp(ts, field);
        return ts.ToDateTime() <= DateTime.UtcNow ? null : ts;
    }

    /// <summary>A scheduled start (or signal) time given as a UTC date: null (now) unless it lies in the future.</summary>
    public static Timestamp? Scheduled(DateTime? utc) =>
        utc is { } at && at > DateTime.UtcNow ? Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(at) : null;

    /// <summary>The number of tags an instance may carry.</summary>
    public static void TagCount(int count)
    {
        if (count > MaxTags) throw TaskHubException.Invalid($"tags has {count} entries; the limit is {MaxTags}");
    }

    public static bool IsTagKey(string key) => key.Length is > 0 and <= MaxTagKeyLength;

    public static bool IsTagValue(string? value) => value is { Length: <= MaxTagValueLength };

    /// <summary>Tags sent over gRPC: at most 64, keys of 1-256 characters, values of at most 1024.</summary>
    public static void Tags(MapField<string, string> tags)
    {
        var problem = CheckTags(tags);
        if (problem is not null) throw TaskHubException.Invalid(problem);
    }

    /// <summary>A message when tags break the limits of <see cref="Tags(MapField{string, string})"/>, else null.</summary>
    public static string? CheckTags(MapField<string, string> tags)
    {
        if (tags.Count > MaxTags) return $"tags has {tags.Count} entries; the limit is {MaxTags}";
        foreach (var (key, value) in tags)
        {
            if (!IsTagKey(key)) return $"tag key '{Short(key)}' must be 1-256 characters long";
            if (!IsTagValue(value)) return $"the value of tag '{Short(key)}' is {value.Length} characters long; the limit is {MaxTagValueLength}";
        }

        return null;
    }

    /// <summary>Tags given in a JSON body, where a value may also be missing (null): the same limits, in the JSON API's words.</summary>
    public static void Tags(Dictionary<string, string> tags)
    {
        TagCount(tags.Count);
        foreach (var (key, value) in tags)
        {
            if (!IsTagKey(key)) throw TaskHubException.Invalid("a tag key must be 1-256 characters long");
            if (!IsTagValue(value)) throw TaskHubException.Invalid($"the value of tag '{key}' must be a string of at most {MaxTagValueLength} characters");
        }
    }

    /// <summary>An entity id of the form '@name@key'.</summary>
    public static void EntityId(string? id, string field = "instanceId")
    {
        var problem = EntityIds.Check(id, field);
        if (problem is not null) throw TaskHubException.Invalid(problem);
    }

    /// <summary>
    /// An entity id prefix as entities are stored: it starts with '@' (a prefix without one names an entity), and the
    /// entity name, which is case-insensitive, is lower-case.
    /// </summary>
    public static string EntityIdPrefix(string prefix)
    {
        if (prefix[0] != '@') prefix = "@" + prefix;
        int split = prefix.IndexOf('@', 1);
        return split < 0 ? prefix.ToLowerInvariant() : prefix[..split].ToLowerInvariant() + prefix[split..];
    }

    static string Short(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
