using System.Runtime.CompilerServices;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Api;

/// <summary>
/// Counting by status scans every instance under the hub's lock. Dashboards refresh every few seconds, often several at
/// once with the same filters, so a count is reused for up to a second per hub and filter; writes through the API clear it.
/// </summary>
static class CountCache
{
    static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(1);
    const int MaxEntries = 64;

    sealed class Entries
    {
        public readonly object Gate = new();
        public readonly Dictionary<string, (long At, Dictionary<OrchestrationStatus, int> Counts)> Items = new(StringComparer.Ordinal);
    }

    static readonly ConditionalWeakTable<TaskHub, Entries> Hubs = new();

    public static async Task<Dictionary<OrchestrationStatus, int>> Get(TaskHub hub, TaskHub.InstanceFilter filter, string key)
    {
        var entries = Hubs.GetValue(hub, _ => new Entries());
        long now = Environment.TickCount64;
        lock (entries.Gate)
        {
            if (entries.Items.TryGetValue(key, out var hit) && now - hit.At < Lifetime.TotalMilliseconds) return hit.Counts;
        }

        var counts = await hub.CountByStatusAsync(filter);
        lock (entries.Gate)
        {
            if (entries.Items.Count >= MaxEntries) entries.Items.Clear();
            entries.Items[key] = (now, counts);
        }

        return counts;
    }

    public static void Invalidate(TaskHub hub)
    {
        if (!Hubs.TryGetValue(hub, out var entries)) return;
        lock (entries.Gate) entries.Items.Clear();
    }

    /// <summary>The filter part of a query string, in a canonical order.</summary>
    public static string Key(HttpRequest request)
    {
        var parts = new List<string>();
        foreach (var (name, values) in request.Query)
        {
            if (name is "pageSize" or "after" or "before" or "minutes" or "payloadLimit") continue;
            foreach (var value in values) parts.Add($"{name.ToLowerInvariant()}={value}");
        }

        parts.Sort(StringComparer.Ordinal);
        return string.Join('&', parts);
    }
}
