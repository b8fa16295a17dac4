using System.Diagnostics;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Entities;

namespace DurableTask.Benchmarks.Load;

/// <summary>The orchestrations, activities and entity the scenarios run, and the counters the worker keeps.</summary>
static class Workload
{
    public const string HelloCities = "HelloCities";
    public const string SayHello = "SayHello";
    public const string FanOut = "FanOut";
    public const string Echo = "Echo";
    public const string Sequence = "Sequence";
    public const string Step = "Step";
    public const string CounterEntity = "counter";
    public const string AwaitApproval = "AwaitApproval";
    public const string ApprovalEvent = "approval";

    public static readonly string[] Cities = ["Tokyo", "Seattle", "London", "Cairo", "Lima"];

    /// <summary>Orchestrator function invocations: the .NET worker runs the function once per orchestrator work item.</summary>
    public static long OrchestratorWorkItems;

    public static long ActivityWorkItems;

    public static long EntityOperations;

    /// <summary>Stopwatch timestamps at which each step of the large-history orchestration started.</summary>
    public static long[] StepStarted = [];

    /// <summary>Called with the step index as each step starts (the large-history run samples the backend's CPU).</summary>
    public static Action<int>? StepStarting;

    static long _entityTarget = long.MaxValue;
    static TaskCompletionSource<long> _entityTargetReached = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static void ResetCounters()
    {
        Interlocked.Exchange(ref OrchestratorWorkItems, 0);
        Interlocked.Exchange(ref ActivityWorkItems, 0);
    }

    /// <summary>Completes with the timestamp at which the worker had run <paramref name="operations"/> entity operations.</summary>
    public static Task<long> WhenEntityOperations(long operations)
    {
        _entityTargetReached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref EntityOperations, 0);
        Volatile.Write(ref _entityTarget, operations);
        return _entityTargetReached.Task;
    }

    public static void Register(DurableTaskRegistry r)
    {
        // Waits for one external event and returns what it carried (the waiting-instances scenario).
        r.AddOrchestratorFunc<object?, string>(AwaitApproval, async (ctx, _) =>
        {
            Interlocked.Increment(ref OrchestratorWorkItems);
            return await ctx.WaitForExternalEvent<string>(ApprovalEvent);
        });

        r.AddOrchestratorFunc<object?, List<string>>(HelloCities, async (ctx, _) =>
        {
            Interlocked.Increment(ref OrchestratorWorkItems);
            var greetings = new List<string>(Cities.Length);
            foreach (var city in Cities)
                greetings.Add(await ctx.CallActivityAsync<string>(SayHello, city));
            return greetings;
        });

        r.AddActivityFunc<string, string>(SayHello, (_, city) =>
        {
            Interlocked.Increment(ref ActivityWorkItems);
            return $"Hello, {city}!";
        });

        r.AddOrchestratorFunc<int, long>(FanOut, async (ctx, count) =>
        {
            Interlocked.Increment(ref OrchestratorWorkItems);
            var tasks = new Task<int>[count];
            for (var i = 0; i < count; i++)
                tasks[i] = ctx.CallActivityAsync<int>(Echo, i);
            var results = await Task.WhenAll(tasks);
            long sum = 0;
            foreach (var value in results)
                sum += value;
            return sum;
        });

        r.AddActivityFunc<int, int>(Echo, (_, value) =>
        {
            Interlocked.Increment(ref ActivityWorkItems);
            return value;
        });

        r.AddOrchestratorFunc<int, int>(Sequence, async (ctx, steps) =>
        {
            Interlocked.Increment(ref OrchestratorWorkItems);
            var done = 0;
            for (var i = 0; i < steps; i++)
                done += await ctx.CallActivityAsync<int>(Step, i) == i ? 1 : 0;
            return done;
        });

        r.AddActivityFunc<int, int>(Step, (_, index) =>
        {
            Interlocked.Increment(ref ActivityWorkItems);
            var started = StepStarted;
            if ((uint)index < (uint)started.Length)
                started[index] = Stopwatch.GetTimestamp();
            StepStarting?.Invoke(index);
            return index;
        });

        r.AddEntity<Counter>(CounterEntity);
    }

    internal static void EntityOperationDone()
    {
        if (Interlocked.Increment(ref EntityOperations) == Volatile.Read(ref _entityTarget))
            _entityTargetReached.TrySetResult(Stopwatch.GetTimestamp());
    }
}

/// <summary>A counter entity: <c>add</c> increases its state.</summary>
sealed class Counter : TaskEntity<int>
{
    public void Add(int amount)
    {
        State += amount;
        Workload.EntityOperationDone();
    }
}
