using System.Text;
using DurableTask.Dashboard.Api;

namespace DurableTask.Dashboard.Components;

/// <summary>Filters and paging live in the page address, so the back button and shared links show the same list.</summary>
public static class FilterQuery
{
    public static OrchestrationFilter From(string[]? status, string? name, string? version, string? prefix, string? search, string? createdFrom,
        string? createdTo, string[]? tag, bool? hideSubOrchestrations) => new()
    {
        Statuses = status?.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.OrdinalIgnoreCase).ToList() ?? [],
        Name = NullIfEmpty(name),
        Version = NullIfEmpty(version),
        Prefix = NullIfEmpty(prefix),
        Search = NullIfEmpty(search),
        CreatedFrom = Format.ParseUtc(createdFrom),
        CreatedTo = Format.ParseUtc(createdTo),
        Tags = Format.ParseTags(tag is null ? null : string.Join(',', tag)),
        HideSubOrchestrations = hideSubOrchestrations ?? false,
    };

    public static string Url(string path, IEnumerable<KeyValuePair<string, string>> query)
    {
        var sb = new StringBuilder(path);
        char sep = '?';
        foreach (var (k, v) in query)
        {
            sb.Append(sep).Append(Uri.EscapeDataString(k)).Append('=').Append(Uri.EscapeDataString(v));
            sep = '&';
        }

        return sb.ToString();
    }

    public static string HubPath(string hub, string section = "") => $"hubs/{Uri.EscapeDataString(hub)}{section}";

    public static string InstanceUrl(string hub, string id) => $"{HubPath(hub, "/orchestration")}?id={Uri.EscapeDataString(id)}";

    public static string ListUrl(string hub, OrchestrationFilter filter, params (string Key, string? Value)[] extra) =>
        Url(HubPath(hub, "/orchestrations"), filter.ToQuery().Concat(Extra(extra)));

    public static string OverviewUrl(string hub, OrchestrationFilter filter, params (string Key, string? Value)[] extra) =>
        Url(HubPath(hub), filter.ToQuery().Concat(Extra(extra)));

    static IEnumerable<KeyValuePair<string, string>> Extra((string Key, string? Value)[] extra) =>
        extra.Where(e => !string.IsNullOrEmpty(e.Value)).Select(e => new KeyValuePair<string, string>(e.Key, e.Value!));

    static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
