using System.Text.Json;
using System.Text.Json.Serialization;

namespace DurableTask.Benchmarks;

/// <summary>What one load run measured; written as JSON by the load role and read by the runner.</summary>
sealed class ScenarioResult
{
    public string Scenario { get; set; } = "";
    public string Backend { get; set; } = "";

    /// <summary>Which round of the scenario this was (0-based; see <c>--rounds</c>).</summary>
    public int Round { get; set; }

    /// <summary>The backend does not implement what the scenario needs (e.g. entities); <see cref="Message"/> says why.</summary>
    public bool Skipped { get; set; }

    /// <summary>The run failed (timeout, failed instances, wrong results); <see cref="Message"/> says how.</summary>
    public bool Failed { get; set; }

    public string? Message { get; set; }

    /// <summary>What one unit of <see cref="Count"/> is: orchestration, activity, operation or step.</summary>
    public string Unit { get; set; } = "";

    public int Count { get; set; }
    public double ElapsedSeconds { get; set; }
    public double Throughput { get; set; }

    /// <summary>Per orchestration, from the start call being issued to the completion being observed by the client.</summary>
    public double? LatencyP50Ms { get; set; }
    public double? LatencyP99Ms { get; set; }

    public long OrchestratorWorkItems { get; set; }
    public long ActivityWorkItems { get; set; }
    public double WorkItemsPerSecond { get; set; }

    /// <summary>Large histories: mean time per step over the first and the last window of steps.</summary>
    public int? StepWindow { get; set; }
    public double? FirstStepsMs { get; set; }
    public double? LastStepsMs { get; set; }
    public double? FirstStepsBackendCpuMs { get; set; }
    public double? LastStepsBackendCpuMs { get; set; }

    public double BackendCpuSeconds { get; set; }
    public double BackendCpuMsPerUnit { get; set; }
    public long BackendRssBeforeBytes { get; set; }
    public long BackendRssAfterBytes { get; set; }
    public long BackendPeakRssBytes { get; set; }
    public double BackendRssBytesPerUnit { get; set; }

    /// <summary>Live heap after a full collection, after the timed run minus before it, per unit (see HeapProbe).</summary>
    public double? BackendHeapBytesPerUnit { get; set; }
    public double LoadCpuSeconds { get; set; }

    /// <summary>The redis-server's CPU time; only for a scheduler on Redis.</summary>
    public double? RedisCpuSeconds { get; set; }
    public double? RedisCpuMsPerUnit { get; set; }

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static string ToJson(IEnumerable<ScenarioResult> results) => JsonSerializer.Serialize(results, Json);

    public static ScenarioResult FromJson(string json) =>
        JsonSerializer.Deserialize<ScenarioResult>(json, Json) ?? throw new InvalidDataException("empty result");
}
