using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace DurableTask.Dashboard.Components;

/// <summary>How the dashboard writes times, durations and payloads. Times are shown in UTC.</summary>
public static class Format
{
    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Time(DateTime? value) =>
        value is { } v ? v.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture) : "";

    public static string ShortTime(DateTime value) => value.ToUniversalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture);

    public static string Duration(double milliseconds) => Duration(TimeSpan.FromMilliseconds(milliseconds));

    public static string Duration(TimeSpan d)
    {
        if (d < TimeSpan.Zero) d = TimeSpan.Zero;
        if (d.TotalSeconds < 1) return $"{d.TotalMilliseconds:0} ms";
        if (d.TotalMinutes < 1) return $"{d.TotalSeconds:0.0#} s";
        if (d.TotalHours < 1) return $"{(int)d.TotalMinutes} min {d.Seconds} s";
        if (d.TotalDays < 1) return $"{(int)d.TotalHours} h {d.Minutes} min";
        return $"{(int)d.TotalDays} d {d.Hours} h";
    }

    /// <summary>Indents a JSON payload; anything that is not JSON (or is cut short) is shown as it is.</summary>
    public static string Json(string? payload)
    {
        if (string.IsNullOrEmpty(payload)) return "";
        try
        {
            using var doc = JsonDocument.Parse(payload);
            return doc.RootElement.ValueKind is JsonValueKind.Object or JsonValueKind.Array
                ? JsonSerializer.Serialize(doc.RootElement, Indented)
                : payload;
        }
        catch (JsonException)
        {
            return payload;
        }
    }

    public static string Bytes(int chars) => chars switch
    {
        < 1024 => $"{chars} characters",
        < 1024 * 1024 => $"{chars / 1024.0:0.#} K characters",
        _ => $"{chars / (1024.0 * 1024):0.#} M characters",
    };

    /// <summary>A version as shown: "(none)" for no version.</summary>
    public static string Version(string? version) => string.IsNullOrWhiteSpace(version) ? "(none)" : version;

    public static string StatusClass(string status) => "status status-" + status.ToLowerInvariant();

    public static bool IsTerminal(string status) => status is "Completed" or "Failed" or "Terminated" or "Canceled";

    /// <summary>Parses a "datetime-local" value (no zone) as UTC.</summary>
    public static DateTime? ParseUtc(string? value) =>
        DateTime.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t)
            ? DateTime.SpecifyKind(t, DateTimeKind.Utc)
            : null;

    /// <summary>A time typed into a "datetime-local" input (no zone) is UTC, as every time the dashboard shows.</summary>
    public static DateTime? AsUtc(DateTime? value) => value switch
    {
        null => null,
        { Kind: DateTimeKind.Utc } v => v,
        { } v => DateTime.SpecifyKind(v, DateTimeKind.Utc),
    };

    /// <summary>Parses "key=value, other=value" (or one per line) into tags; a bare key matches any value.</summary>
    public static Dictionary<string, string> ParseTags(string? text)
    {
        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(text)) return tags;
        foreach (var part in text.Split([',', '\n', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=');
            var key = (eq < 0 ? part : part[..eq]).Trim();
            if (key.Length > 0) tags[key] = eq < 0 ? "" : part[(eq + 1)..].Trim();
        }

        return tags;
    }

    public static string TagsText(IReadOnlyDictionary<string, string>? tags) =>
        tags is null ? "" : string.Join(", ", tags.Select(t => t.Value.Length == 0 ? t.Key : $"{t.Key}={t.Value}"));
}
