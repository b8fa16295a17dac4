using System.Globalization;
using System.Text.Json;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Api;

/// <summary>Reads and validates query parameters, route values and bodies; every problem becomes a 400 naming the parameter.</summary>
static class ApiRequests
{
    public const int DefaultPageSize = 100;
    public const int DefaultPayloadLimit = 4096;
    public const int MaxPayloadLimit = 16 * 1024 * 1024;

    public static TaskHub.InstanceFilter Filter(HttpRequest request)
    {
        var q = request.Query;
        var statuses = new HashSet<OrchestrationStatus>();
        foreach (var value in q["status"])
        {
            if (value is null) continue;
            foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                statuses.Add(ParseStatus(part, "status"));
            }
        }

        Dictionary<string, string>? tags = null;
        foreach (var value in q["tag"])
        {
            if (string.IsNullOrEmpty(value)) continue;
            int eq = value.IndexOf('=');
            string key = eq < 0 ? value : value[..eq];
            if (key.Length == 0) throw ApiException.BadRequest($"tag '{value}' has no key; use tag=key=value or tag=key");
            (tags ??= new(StringComparer.Ordinal))[key] = eq < 0 ? "" : value[(eq + 1)..];
        }

        return new TaskHub.InstanceFilter(
            Statuses: statuses.Count > 0 ? statuses : null,
            CreatedFrom: Time(q["createdFrom"], "createdFrom"),
            CreatedTo: Time(q["createdTo"], "createdTo"),
            Prefix: Text(q["prefix"]),
            CompletedFrom: Time(q["completedFrom"], "completedFrom"),
            CompletedTo: Time(q["completedTo"], "completedTo"),
            Name: Text(q["name"]),
            Version: Text(q["version"]),
            Search: Text(q["search"]),
            Tags: tags,
            HideSubOrchestrations: Bool(q["hideSubOrchestrations"], "hideSubOrchestrations", false));
    }

    public static TaskHub.InstanceFilter Filter(FilterBody? body)
    {
        if (body is null) return new TaskHub.InstanceFilter();
        HashSet<OrchestrationStatus>? statuses = null;
        if (body.Statuses is { Count: > 0 })
        {
            statuses = new HashSet<OrchestrationStatus>();
            foreach (var s in body.Statuses) statuses.Add(ParseStatus(s, "filter.statuses"));
        }

        if (body.Tags is { } t && t.Keys.Any(k => k.Length == 0)) throw ApiException.BadRequest("filter.tags has an empty key");
        return new TaskHub.InstanceFilter(
            Statuses: statuses,
            CreatedFrom: Utc(body.CreatedFrom),
            CreatedTo: Utc(body.CreatedTo),
            Prefix: NullIfEmpty(body.Prefix),
            Name: NullIfEmpty(body.Name),
            Version: NullIfEmpty(body.Version),
            Search: NullIfEmpty(body.Search),
            Tags: body.Tags is { Count: > 0 } ? body.Tags : null,
            HideSubOrchestrations: body.HideSubOrchestrations);
    }

    public static OrchestrationStatus ParseStatus(string? value, string field)
    {
        if (!string.IsNullOrEmpty(value) && !char.IsAsciiDigit(value[0]) && !value.StartsWith('-')
            && Enum.TryParse<OrchestrationStatus>(value, ignoreCase: true, out var status) && Enum.IsDefined(status))
        {
            return status;
        }

        throw ApiException.BadRequest(
            $"{field} '{value}' is not a status; use Running, Completed, Failed, Terminated, Pending, Suspended, ContinuedAsNew or Canceled");
    }

    public static int Int(HttpRequest request, string name, int defaultValue, int min, int max)
    {
        var raw = request.Query[name].ToString();
        if (raw.Length == 0) return defaultValue;
        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            throw ApiException.BadRequest($"{name} '{raw}' is invalid; use a whole number from {min} to {max}");
        return value;
    }

    public static bool Bool(HttpRequest request, string name, bool defaultValue) => Bool(request.Query[name], name, defaultValue);

    static bool Bool(Microsoft.Extensions.Primitives.StringValues values, string name, bool defaultValue)
    {
        var raw = values.ToString();
        if (raw.Length == 0) return defaultValue;
        if (bool.TryParse(raw, out var value)) return value;
        throw ApiException.BadRequest($"{name} '{raw}' is invalid; use true or false");
    }

    public static string? Cursor(HttpRequest request, string name)
    {
        var raw = request.Query[name].ToString();
        return raw.Length == 0 ? null : raw;
    }

    public static DateTime? Time(Microsoft.Extensions.Primitives.StringValues values, string name)
    {
        var raw = values.ToString();
        if (raw.Length == 0) return null;
        if (DateTime.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var value))
            return DateTime.SpecifyKind(value, DateTimeKind.Utc);
        throw ApiException.BadRequest($"{name} '{raw}' is not a time; use ISO 8601, e.g. 2026-01-31T12:00:00Z");
    }

    public static DateTime? Utc(DateTime? value) => value switch
    {
        null => null,
        { Kind: DateTimeKind.Utc } v => v,
        { Kind: DateTimeKind.Local } v => v.ToUniversalTime(),
        { } v => DateTime.SpecifyKind(v, DateTimeKind.Utc),
    };

    static string? Text(Microsoft.Extensions.Primitives.StringValues values) => NullIfEmpty(values.ToString());

    static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    /// <summary>Reads a JSON body; an empty body gives the defaults.</summary>
    public static async Task<T> Body<T>(HttpRequest request) where T : new()
    {
        if (request.ContentLength == 0) return new T();
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
            if (buffer.Length == 0) return new T();
            buffer.Position = 0;
            return JsonSerializer.Deserialize<T>(buffer, ApiJson.Options) ?? new T();
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the request body is not valid JSON for this request: {e.Message}");
        }
    }

    /// <summary>The serialized text of a JSON value given in a body (null when absent or JSON null).</summary>
    public static string? Serialized(JsonElement? value) =>
        value is { ValueKind: not JsonValueKind.Undefined and not JsonValueKind.Null } v ? v.GetRawText() : null;

    /// <summary>
    /// An instance id taken from the path. Kestrel leaves an escaped slash (%2F) undecoded, so when the route value still
    /// holds a '%', the segment is decoded again from the raw request target.
    /// </summary>
    public static string PathId(HttpContext context, string routeValue, int segmentIndex)
    {
        if (!routeValue.Contains('%')) return routeValue;
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (raw is null || !raw.StartsWith('/')) return routeValue;
        int query = raw.IndexOfAny(['?', '#']);
        if (query >= 0) raw = raw[..query];
        var segments = raw.Split('/');
        // segments[0] is empty (the leading slash); a path base adds segments in front of the API's own.
        int baseSegments = context.Request.PathBase.HasValue ? context.Request.PathBase.Value!.Count(c => c == '/') : 0;
        int index = 1 + baseSegments + segmentIndex;
        return index < segments.Length ? Uri.UnescapeDataString(segments[index]) : routeValue;
    }
}
