namespace DurableTask.Scheduler.Configuration;

/// <summary>
/// Settings of the scheduler, bound from the <c>Scheduler</c> configuration section.
/// <code>
/// "Scheduler": { "GrpcPort": 8080, "HttpPort": 8081, "BindAddress": "localhost", "Store": "sqlite",
///                "DataPath": "./data", "MaxPayloadBytes": 1048576 }
/// </code>
/// Task hubs come from <c>DTS_TASK_HUB_NAMES</c> and <c>DTS_USE_DYNAMIC_TASK_HUBS</c>, as in the managed emulator.
/// </summary>
public sealed class SchedulerOptions
{
    public const string Section = "Scheduler";

    /// <summary>Port of the cleartext HTTP/2 gRPC endpoint.</summary>
    public int GrpcPort { get; set; } = 8080;

    /// <summary>Port of the HTTP/1.1 endpoint (health, JSON API).</summary>
    public int HttpPort { get; set; } = 8081;

    /// <summary><c>localhost</c> (loopback only), <c>*</c> / <c>0.0.0.0</c> (all interfaces), or an IP address.</summary>
    public string BindAddress { get; set; } = "localhost";

    /// <summary>Which store keeps the state: <c>sqlite</c> (embedded, durable), <c>memory</c> (the emulator's), <c>redis</c>.</summary>
    public string Store { get; set; } = "sqlite";

    /// <summary>Folder of the embedded durable store.</summary>
    public string DataPath { get; set; } = "./data";

    /// <summary>Largest input, output, event payload, custom status or entity state accepted, in bytes (UTF-8). The managed service's limit is 1 MB.</summary>
    public int MaxPayloadBytes { get; set; } = 1024 * 1024;

    /// <summary>Interval between keep-alive messages on each work-item stream. The .NET SDK gives up on a stream after 120 s of silence.</summary>
    public TimeSpan HealthPingInterval { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Orchestrator work items whose past history is larger than this are sent without history to workers that can stream it.</summary>
    public int HistoryStreamingThresholdBytes { get; set; } = 1024 * 1024;

    /// <summary>Size of one <c>HistoryChunk</c> when streaming history.</summary>
    public int HistoryChunkBytes { get; set; } = 256 * 1024;

    /// <summary>Most inbox messages handed to one orchestrator work item.</summary>
    public int MaxEventsPerWorkItem { get; set; } = 10_000;

    /// <summary>
    /// Most bytes of inbox messages handed to one orchestrator work item (at least one message is always sent), so a
    /// work item stays well under the 4 MB a .NET worker accepts, while a fan-in still takes many results at once.
    /// </summary>
    public int MaxNewEventBytesPerWorkItem { get; set; } = 2 * 1024 * 1024;

    /// <summary>Concurrency assumed per work-item type for a worker that announces no limit.</summary>
    public int DefaultWorkerConcurrency { get; set; } = 1000;

    /// <summary>
    /// Most orchestrator work items one worker stream holds at once, even when the worker allows more (0: as many as
    /// the worker allows). An episode is CPU work in the worker (orchestrator code does not block: it awaits durable
    /// tasks, which ends the episode), so more at once than a worker has cores to run them only adds contention
    /// there. Measured on 2 cores with a worker allowing 1,000 (hello-cities): 100 at a time gave 20-35 % more
    /// orchestrations/s than 1,000 and cut the SDK's CPU per orchestration by about a third; 50 gave another 5-35 %
    /// over 100 (ten alternating runs, SDK CPU a fifth lower), 32 about the same as 50 for more scheduler CPU. 50 in
    /// flight still covers several milliseconds of round trip at thousands of episodes a second. Activities and
    /// entities are not limited beyond the worker's own limits: their work may wait on I/O.
    /// </summary>
    public int MaxOrchestrationWorkItemsPerWorker { get; set; } = 50;

    /// <summary>
    /// Longest wait of a large fan-in for more activity results before its next episode (0.1 ms per history event from
    /// 2,000 events on, up to this); <see cref="TimeSpan.Zero"/> turns the wait off. Every episode makes the worker
    /// replay the whole history: a 10,000-activity fan-out/fan-in took 7 episodes without the wait and 3 with it, and
    /// its throughput rose by about a third on 2 cores.
    /// </summary>
    public TimeSpan MaxFanInHold { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>First delay before redelivering abandoned work; doubled on every further abandon of the same work.</summary>
    public TimeSpan RedeliveryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Upper bound of the redelivery delay.</summary>
    public TimeSpan MaxRedeliveryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Time a disconnected worker's in-flight work waits for a late completion before it is redelivered.</summary>
    public TimeSpan DisconnectGracePeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long an RPC waits for its change to be committed before it answers Unavailable.</summary>
    public TimeSpan CommitTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Most finished instances a task hub keeps in memory with a durable store (the most recently finished or read);
    /// older ones are read back from the store when used, and queries read the store.
    /// </summary>
    public int MaxFinishedInstancesInMemory { get; set; } = 100_000;

    /// <summary>
    /// Most unfinished instances a task hub keeps in memory with a durable store. Past it, those that wait only for a
    /// client (an external event, a termination, a suspend or resume) leave memory, least recently changed first, and
    /// are read back when something arrives for them. Instances waiting for an activity, a timer, a sub-orchestration
    /// or an entity stay, whatever their number.
    /// </summary>
    public int MaxUnfinishedInstancesInMemory { get; set; } = 50_000;

    /// <summary>Retention policies by task hub name (<c>*</c> for every other hub); empty = keep everything.</summary>
    public Dictionary<string, RetentionPolicy> Retention { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How often the retention policies are applied.</summary>
    public TimeSpan RetentionCheckInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How often an idle scheduler checks whether to give memory back after a burst (one compacting collection when the
    /// collector holds more than twice the live heap and at least 128 MB); zero or negative turns it off.
    /// </summary>
    public TimeSpan MemoryTrimInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Names of the task hubs (from <c>DTS_TASK_HUB_NAMES</c>, comma-separated).</summary>
    public List<string> TaskHubNames { get; set; } = new() { "default" };

    /// <summary>Create a task hub on its first use (from <c>DTS_USE_DYNAMIC_TASK_HUBS</c>).</summary>
    public bool UseDynamicTaskHubs { get; set; }

    /// <summary>Replicas sharing one Redis: leases and forwarding (used with <c>Store = redis</c>).</summary>
    public ScaleOutOptions ScaleOut { get; set; } = new();

    /// <summary>Most task hubs created on first use, so callers cannot create hubs (and store files) without bound.</summary>
    public int MaxDynamicTaskHubs { get; set; } = 1000;
}
