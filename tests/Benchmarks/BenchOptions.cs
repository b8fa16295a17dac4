using System.Globalization;

namespace DurableTask.Benchmarks;

/// <summary>Command-line options shared by all roles (each role reads the ones it needs).</summary>
sealed class BenchOptions
{
    public static readonly string[] AllScenarios = ["hello-cities", "fan-out", "entity-signals", "large-history", "unary-calls"];

    /// <summary>Scenarios run only when named: they restart the scheduler and take minutes at their default size.</summary>
    public static readonly string[] NamedScenarios = ["waiting-instances"];
    public static readonly string[] AllBackends = ["ours", "ours-memory", "ours-sqlite", "ours-redis", "base-memory", "base-sqlite", "base-redis", "reference"];

    public const string Usage = """
        Usage: Benchmarks [options]                  run every scenario against every backend, print a table
               Benchmarks --role backend-ours|backend-reference|load [options]

        Options (defaults in brackets):
          --scenarios a,b       hello-cities,fan-out,entity-signals,large-history,unary-calls [all];
                                waiting-instances only when named: --waiting orchestrations wait for an event, the
                                scheduler is killed (kill -9) and restarted on its store, then every event is raised
                                (ours-sqlite, ours-redis, base-sqlite, base-redis backends)
          --backends a,b        ours (with --store), ours-memory, ours-sqlite, ours-redis, reference [ours,reference];
                                base-memory, base-sqlite, base-redis: the scheduler of --baseline-dll
          --replicas N,M        scheduler replicas sharing one fresh redis-server, for a redis store; each count is
                                its own run and column (ours-redis-x2) [1]
          --n N                 hello-cities orchestrations [5000]
          --warmup N            untimed hello-cities orchestrations before each timed run [500]
          --input-bytes N       size of the input every hello-cities orchestration starts with (a JSON string the
                                orchestration ignores; the client reads it back with the completion) [0: none]
          --waiting N           instances waiting for an event in waiting-instances [100000]
          --fan-out N           activities in the fan-out/fan-in orchestration [10000]
          --signals N           entity signals [10000]
          --entities N          counter entities the signals are spread over [100]
          --steps N             sequential activities in the large-history orchestration [1000]
          --calls N             Hello calls in unary-calls, the gRPC floor [100000]
          --store memory|sqlite|redis  store passed to our scheduler [memory]
          --scheduler-dll PATH  built scheduler to run [Scheduler/bin/<Configuration>/net10.0/Scheduler.dll]
          --baseline-dll PATH   another built scheduler (say, of main), run as the base-* backends, so two builds
                                are compared in one run, their rounds alternating; ratios ours-X/base-X follow
          --rounds N            runs of each scenario on every backend, in alternating order (A B C, then C B A, ...);
                                the table shows each backend's median round, and the ratios of every round follow it [1]
          --timeout SECONDS     limit for one scenario run [300]
          --json PATH           also write all results as JSON
        Roles:
          --port P              backend gRPC port (backend roles; the first replica's)
          --address URL,URL     backend gRPC addresses, one worker each; the client uses the first (load role)
          --scenario NAME       scenario to run (load role)
          --backend-pid PID,PID processes whose summed CPU time and memory the load role measures
          --redis-pid PID       redis-server whose CPU time the load role measures
          --out PATH            where the load role writes its JSON result
        """;

    public string Role { get; private set; } = "orchestrate";
    public bool Help { get; private set; }
    public IReadOnlyList<string> Scenarios { get; private set; } = AllScenarios;
    public IReadOnlyList<string> Backends { get; private set; } = ["ours", "reference"];
    public IReadOnlyList<int> Replicas { get; private set; } = [1];

    /// <summary>One run (and table column) per backend, and per replica count for a scheduler on Redis.</summary>
    public IReadOnlyList<BackendRun> Runs =>
    [
        .. Backends.SelectMany(b => IsScheduler(b) && StoreOf(b) == "redis"
            ? Replicas.Select(n => new BackendRun($"{b}-x{n}", b, n))
            : [new BackendRun(b, b, 1)]),
    ];

    /// <summary>True for a backend that runs a build of this scheduler: ours-* (this build) or base-* (the baseline).</summary>
    public static bool IsScheduler(string backend) =>
        backend.StartsWith("ours", StringComparison.Ordinal) || backend.StartsWith("base-", StringComparison.Ordinal);

    /// <summary>The store a scheduler backend runs with: its suffix (ours-sqlite, base-sqlite), else <see cref="Store"/>.</summary>
    public string StoreOf(string backend) =>
        backend.StartsWith("ours-", StringComparison.Ordinal) || backend.StartsWith("base-", StringComparison.Ordinal) ? backend[5..] : Store;

    /// <summary>The built scheduler a scheduler backend runs: the baseline for base-*.</summary>
    public string? DllOf(string backend) => backend.StartsWith("base-", StringComparison.Ordinal) ? BaselineDll : SchedulerDll;
    public int Orchestrations { get; private set; } = 5000;
    public int Warmup { get; private set; } = 500;
    public int FanOut { get; private set; } = 10_000;
    public int Waiting { get; private set; } = 100_000;
    public int Signals { get; private set; } = 10_000;
    public int Entities { get; private set; } = 100;
    public int Steps { get; private set; } = 1000;
    public int InputBytes { get; private set; }
    public int Calls { get; private set; } = 100_000;
    public string Store { get; private set; } = "memory";
    public string? SchedulerDll { get; private set; }
    public string? BaselineDll { get; private set; }
    public int TimeoutSeconds { get; private set; } = 300;
    public int Rounds { get; private set; } = 1;
    public string? JsonPath { get; private set; }
    public int Port { get; private set; }
    public IReadOnlyList<string> Addresses { get; private set; } = [];
    public string? Scenario { get; private set; }
    public IReadOnlyList<int> BackendPids { get; private set; } = [];
    public int? RedisPid { get; private set; }
    public string? OutPath { get; private set; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "-h" or "--help" or "-?")
            {
                o.Help = true;
                continue;
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"unexpected argument '{arg}'");

            string name, value;
            var eq = arg.IndexOf('=');
            if (eq > 0)
            {
                name = arg[2..eq];
                value = arg[(eq + 1)..];
            }
            else
            {
                name = arg[2..];
                if (i + 1 >= args.Length)
                    throw new ArgumentException($"option '--{name}' needs a value");
                value = args[++i];
            }

            switch (name)
            {
                case "role": o.Role = value; break;
                case "scenarios": o.Scenarios = List(value, [.. AllScenarios, .. NamedScenarios], name); break;
                case "backends": o.Backends = List(value, AllBackends, name); break;
                case "replicas": o.Replicas = Positives(value, name); break;
                case "n": o.Orchestrations = Positive(value, name); break;
                case "warmup": o.Warmup = NonNegative(value, name); break;
                case "fan-out": o.FanOut = Positive(value, name); break;
                case "waiting": o.Waiting = Positive(value, name); break;
                case "signals": o.Signals = Positive(value, name); break;
                case "entities": o.Entities = Positive(value, name); break;
                case "steps": o.Steps = Positive(value, name); break;
                case "input-bytes": o.InputBytes = NonNegative(value, name); break;
                case "calls": o.Calls = Positive(value, name); break;
                case "store": o.Store = value; break;
                case "scheduler-dll": o.SchedulerDll = value; break;
                case "baseline-dll": o.BaselineDll = value; break;
                case "timeout": o.TimeoutSeconds = Positive(value, name); break;
                case "rounds": o.Rounds = Positive(value, name); break;
                case "json": o.JsonPath = value; break;
                case "port": o.Port = Positive(value, name); break;
                case "address": o.Addresses = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "scenario": o.Scenario = List(value, AllScenarios, name).Single(); break;
                case "backend-pid": o.BackendPids = Positives(value, name); break;
                case "redis-pid": o.RedisPid = Positive(value, name); break;
                case "out": o.OutPath = value; break;
                default: throw new ArgumentException($"unknown option '--{name}'");
            }
        }

        return o;
    }

    static IReadOnlyList<string> List(string value, string[] allowed, string name)
    {
        var items = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var item in items)
        {
            if (!allowed.Contains(item))
                throw new ArgumentException($"--{name}: unknown value '{item}' (allowed: {string.Join(", ", allowed)})");
        }

        return items.Length > 0 ? items.Distinct().ToArray() : throw new ArgumentException($"--{name} is empty");
    }

    static IReadOnlyList<int> Positives(string value, string name)
    {
        var items = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return items.Length > 0 ? items.Select(v => Positive(v, name)).Distinct().ToArray() : throw new ArgumentException($"--{name} is empty");
    }

    static int Positive(string value, string name) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"--{name} must be a positive integer, not '{value}'");

    static int NonNegative(string value, string name) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new ArgumentException($"--{name} must be a non-negative integer, not '{value}'");
}

/// <summary>One backend run: <see cref="Name"/> labels its results, <see cref="Replicas"/> scheduler processes serve it.</summary>
sealed record BackendRun(string Name, string Backend, int Replicas);
