using System.Text;

namespace DurableTask.Scheduler.Domain;

/// <summary>The payload size limit (<c>Scheduler:MaxPayloadBytes</c>, 1 MB by default, as in the managed service).</summary>
public static class PayloadLimit
{
    /// <summary>The error type of an activity, orchestration or entity operation failed for a result over the limit.</summary>
    public const string ErrorType = "PayloadSizeExceeded";

    /// <summary>
    /// Checks a payload against the configured limit; returns a message naming the field (and, when given, the
    /// activity, event or operation it belongs to: "the input of activity 'Greet'"), the size and the limit, or null.
    /// The name is joined in only for a violation, so the check costs no allocation on the hot path.
    /// </summary>
    public static string? Check(string? value, string field, int limit, string? name = null)
    {
        if (value is null || value.Length <= limit / 3) return null; // at most 3 UTF-8 bytes per UTF-16 char
        int size = Encoding.UTF8.GetByteCount(value);
        return size > limit
            ? $"{(name is null ? field : $"{field} '{name}'")} is {size} bytes, which exceeds the maximum payload size of {limit} bytes (Scheduler:MaxPayloadBytes)"
            : null;
    }
}
