using System.Globalization;
using System.Text;

namespace DurableTask.Benchmarks.Runner;

/// <summary>Renders the results as one markdown table: a row per scenario metric, a column per backend, and the ratio.</summary>
static class ResultTable
{
    enum Better { Higher, Lower, None }

    /// <summary>An <paramref name="Optional"/> metric gets a row only when some backend has a value for it.</summary>
    sealed record Metric(string Name, Better Better, Func<ScenarioResult, double?> Value, string Format, bool Optional = false);

    static readonly Metric[] Common =
    [
        new("backend CPU ms / {unit}", Better.Lower, r => r.BackendCpuMsPerUnit, "F3"),
        new("redis CPU ms / {unit}", Better.Lower, r => r.RedisCpuMsPerUnit, "F3", Optional: true),
        new("backend peak RSS MiB", Better.Lower, r => r.BackendPeakRssBytes / 1048576.0, "F0"),
        new("backend RSS growth KiB / {unit}", Better.Lower, r => r.BackendRssBytesPerUnit / 1024, "F2"),
        new("backend heap held B / {unit}", Better.Lower, r => r.BackendHeapBytesPerUnit, "F0", Optional: true),
        new("SDK worker+client CPU ms / {unit}", Better.None, r => r.Count > 0 ? r.LoadCpuSeconds * 1000 / r.Count : null, "F3"),
    ];

    static Metric[] MetricsFor(string scenario) => scenario switch
    {
        "hello-cities" =>
        [
            new("orchestrations/s", Better.Higher, r => r.Throughput, "F0"),
            new("latency p50 ms", Better.Lower, r => r.LatencyP50Ms, "F0"),
            new("latency p99 ms", Better.Lower, r => r.LatencyP99Ms, "F0"),
            new("work items/s", Better.Higher, r => r.WorkItemsPerSecond, "F0"),
            new("orchestrator work items", Better.None, r => r.OrchestratorWorkItems, "F0"),
            .. Common,
        ],
        "fan-out" =>
        [
            new("activities/s", Better.Higher, r => r.Throughput, "F0"),
            new("orchestrator work items", Better.None, r => r.OrchestratorWorkItems, "F0"),
            .. Common,
        ],
        "entity-signals" =>
        [
            new("operations/s", Better.Higher, r => r.Throughput, "F0"),
            .. Common,
        ],
        "large-history" =>
        [
            new("steps/s", Better.Higher, r => r.Throughput, "F1"),
            new("ms / step, first {window} steps", Better.Lower, r => r.FirstStepsMs, "F2"),
            new("ms / step, last {window} steps", Better.Lower, r => r.LastStepsMs, "F2"),
            new("growth last/first", Better.Lower, r => r.FirstStepsMs > 0 ? r.LastStepsMs / r.FirstStepsMs : null, "F2"),
            new("backend CPU ms / step, first {window}", Better.Lower, r => r.FirstStepsBackendCpuMs, "F2"),
            new("backend CPU ms / step, last {window}", Better.Lower, r => r.LastStepsBackendCpuMs, "F2"),
            .. Common,
        ],
        "unary-calls" =>
        [
            new("calls/s", Better.Higher, r => r.Throughput, "F0"),
            new("backend CPU µs / call", Better.Lower, r => r.BackendCpuMsPerUnit * 1000, "F1"),
            .. Common.Where(m => !m.Name.StartsWith("backend CPU", StringComparison.Ordinal) && !m.Name.StartsWith("SDK", StringComparison.Ordinal)),
            new("client CPU µs / call", Better.None, r => r.Count > 0 ? r.LoadCpuSeconds * 1e6 / r.Count : null, "F1"),
        ],
        _ => Common,
    };

    public static string Render(BenchOptions options, IReadOnlyList<ScenarioResult> results, TimeSpan elapsed)
    {
        var backends = options.Runs.Select(r => r.Name).ToList();
        // One ratio column per scheduler backend against the reference, and durable against in-memory.
        var ratios = new List<(string Over, string Under)>();
        if (backends.Contains("reference"))
        {
            foreach (var b in backends.Where(b => b.StartsWith("ours", StringComparison.Ordinal))) ratios.Add((b, "reference"));
        }

        if (backends.Contains("ours-sqlite") && backends.Contains("ours-memory")) ratios.Add(("ours-sqlite", "ours-memory"));
        // This build against the baseline build, store by store.
        foreach (var b in backends.Where(b => b.StartsWith("base-", StringComparison.Ordinal)))
        {
            if (backends.Contains("ours-" + b[5..])) ratios.Add(("ours-" + b[5..], b));
        }

        var sb = new StringBuilder();
        var rounds = options.Rounds > 1 ? $"each backend's median of {options.Rounds} rounds, " : "";
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"Durable Task backends, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, " +
            $"{System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, store of 'ours'={options.Store}, " +
            $"warm-up {options.Warmup} orchestrations, {rounds}total {elapsed.TotalMinutes:F1} min");
        sb.AppendLine("reference = Microsoft.DurableTask.InProcessTestHost 0.2.3-preview.1 with its dispatcher throttle removed");
        sb.AppendLine();

        sb.Append("| scenario | metric |");
        foreach (var b in backends)
            sb.Append(CultureInfo.InvariantCulture, $" {b} |");
        foreach (var (over, under) in ratios)
            sb.Append(CultureInfo.InvariantCulture, $" {over}/{under} |");
        sb.AppendLine();
        sb.Append("|---|---|");
        foreach (var _ in backends)
            sb.Append("---:|");
        foreach (var _ in ratios)
            sb.Append("---:|");
        sb.AppendLine();

        var notes = new List<string>();
        foreach (var scenario in options.Scenarios)
        {
            var byBackend = backends.ToDictionary(b => b, b => Median(results.Where(r => r.Scenario == scenario && r.Backend == b)));
            // One note per backend and message, naming the rounds it happened in when not all of them.
            foreach (var same in results.Where(r => r.Scenario == scenario && (r.Skipped || r.Failed))
                         .GroupBy(r => (r.Backend, r.Skipped, r.Message)))
            {
                var inRounds = same.Select(r => r.Round + 1).ToList();
                var which = inRounds.Count < options.Rounds ? $" (round {string.Join(", ", inRounds)})" : "";
                notes.Add($"{scenario} on {same.Key.Backend}{which}: {(same.Key.Skipped ? "n/a" : "FAILED")}: {same.Key.Message}");
            }

            var unit = byBackend.Values.FirstOrDefault(r => r is { Unit.Length: > 0 })?.Unit ?? "unit";
            var window = byBackend.Values.FirstOrDefault(r => r?.StepWindow is not null)?.StepWindow ?? 100;
            var first = true;
            foreach (var metric in MetricsFor(scenario).Where(m => !m.Optional || byBackend.Values.Any(r => r is not null && m.Value(r) is not null)))
            {
                var label = Title(scenario, options);
                sb.Append(CultureInfo.InvariantCulture, $"| {(first ? label : "")} | {metric.Name.Replace("{unit}", unit).Replace("{window}", window.ToString(CultureInfo.InvariantCulture))}{Arrow(metric.Better)} |");
                first = false;

                var values = new Dictionary<string, double?>();
                foreach (var b in backends)
                {
                    var r = byBackend[b];
                    string cell;
                    if (r is null)
                        cell = "-";
                    else if (r.Skipped)
                        cell = "n/a";
                    else if (r.Failed)
                        cell = "FAILED";
                    else
                    {
                        var v = metric.Value(r);
                        values[b] = v;
                        cell = v is double d && double.IsFinite(d) ? d.ToString(metric.Format, CultureInfo.InvariantCulture) : "-";
                    }

                    sb.Append(CultureInfo.InvariantCulture, $" {cell} |");
                }

                foreach (var (over, under) in ratios)
                {
                    var ratio = values.GetValueOrDefault(over) is double o && values.GetValueOrDefault(under) is double f && o > 0 && f > 0
                        ? (o / f).ToString("F2", CultureInfo.InvariantCulture)
                        : "n/a";
                    sb.Append(CultureInfo.InvariantCulture, $" {ratio} |");
                }

                sb.AppendLine();
            }
        }

        sb.AppendLine();
        sb.AppendLine("↑ higher is better, ↓ lower is better. Throughput counts from the first start call to the last completion seen by the client;");
        sb.AppendLine("latency is per orchestration, start call issued -> completion observed (WaitForInstanceCompletion long-poll).");
        sb.AppendLine("CPU and RSS are the backend process's (/proc), measured around the timed run only; RSS growth = (RSS after - RSS before) / count");
        sb.AppendLine("(negative when a GC shrank the heap during the run). CPU time has 10 ms resolution. Ratios are shown only for positive values.");
        sb.AppendLine("Heap held = (live managed heap after the timed run - the same after purging the run's instances) / count, each read after a");
        sb.AppendLine("full blocking GC through the runtime's diagnostics port: what finished instances keep in memory, payloads included.");
        sb.AppendLine("ours-redis-xN: N scheduler replicas on one redis-server, an SDK worker on each, the client on the first; backend CPU,");
        sb.AppendLine("RSS and RSS growth are summed over the replicas (peak RSS = the sum of each one's peak); redis-server's CPU is its own row.");
        sb.AppendLine("unary gRPC floor: the protocol's cheapest call (Hello, empty in and out); a hello-cities orchestration makes 13 unary calls.");
        sb.AppendLine("Rows without an arrow are context (work the SDK did against each backend), not scores.");
        sb.AppendLine("Backend, SDK worker and client share the same machine: numbers are noisy, compare ratios from one run.");
        foreach (var note in notes)
            sb.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
        if (options.Rounds > 1)
            AppendRounds(sb, options, results, backends, ratios);
        return sb.ToString();
    }

    /// <summary>
    /// The round whose throughput is the median of a backend's rounds (the lower of the middle two for an even
    /// count), so that every row of its column comes from the same run. Failed and skipped rounds are left out,
    /// unless there is nothing else.
    /// </summary>
    static ScenarioResult? Median(IEnumerable<ScenarioResult> rounds)
    {
        var all = rounds.ToList();
        var measured = all.Where(r => !r.Failed && !r.Skipped).OrderBy(r => r.Throughput).ToList();
        return measured.Count > 0 ? measured[(measured.Count - 1) / 2] : all.FirstOrDefault();
    }

    /// <summary>
    /// Throughput and backend CPU of every round, and the ratios within each round: backends measured minutes
    /// apart in the same round saw about the same machine, so the spread of these ratios is the honest range.
    /// </summary>
    static void AppendRounds(StringBuilder sb, BenchOptions options, IReadOnlyList<ScenarioResult> results,
        List<string> backends, List<(string Over, string Under)> ratios)
    {
        sb.AppendLine();
        sb.AppendLine("Every round (in round order; ratios within a round):");
        foreach (var scenario in options.Scenarios)
        {
            var inScenario = results.Where(r => r.Scenario == scenario).ToList();
            var unit = inScenario.FirstOrDefault(r => r is { Unit.Length: > 0 })?.Unit ?? "unit";
            var metrics = MetricsFor(scenario);
            var cpu = metrics.First(m => m.Name.StartsWith("backend CPU", StringComparison.Ordinal) && !m.Name.Contains("{window}"));
            foreach (var metric in new[] { metrics[0], cpu })
            {
                double? ValueIn(string backend, int round) =>
                    inScenario.FirstOrDefault(r => r.Backend == backend && r.Round == round) is { Failed: false, Skipped: false } r
                        && metric.Value(r) is double v && double.IsFinite(v) && v > 0 ? v : null;

                string Series(Func<int, string> cell) =>
                    string.Join(" ", Enumerable.Range(0, options.Rounds).Select(cell));

                var parts = backends.Select(b => $"{b} " + Series(round => ValueIn(b, round) is double v
                    ? v.ToString(metric.Format, CultureInfo.InvariantCulture) : "-")).ToList();
                parts.AddRange(ratios.Select(ratio => $"{ratio.Over}/{ratio.Under} " + Series(round =>
                    ValueIn(ratio.Over, round) is double o && ValueIn(ratio.Under, round) is double u
                        ? (o / u).ToString("F2", CultureInfo.InvariantCulture) : "-")));
                sb.AppendLine(CultureInfo.InvariantCulture, $"- {scenario}, {metric.Name.Replace("{unit}", unit)}: {string.Join("; ", parts)}");
            }
        }
    }

    static string Title(string scenario, BenchOptions o) => scenario switch
    {
        "hello-cities" => o.InputBytes > 0
            ? $"hello-cities ({o.Orchestrations} x 5 activities, {o.InputBytes:N0}-byte input)"
            : $"hello-cities ({o.Orchestrations} x 5 activities)",
        "fan-out" => $"fan-out/fan-in ({o.FanOut} activities)",
        "entity-signals" => $"entity signals ({o.Signals} to {o.Entities} counters)",
        "large-history" => $"large history ({o.Steps} sequential activities)",
        "unary-calls" => $"unary gRPC floor ({o.Calls} Hello calls, {DurableTask.Benchmarks.Load.LoadRunner.UnaryCallers} at once)",
        _ => scenario,
    };

    static string Arrow(Better better) => better switch
    {
        Better.Higher => " ↑",
        Better.Lower => " ↓",
        _ => "",
    };
}
