using Microsoft.DurableTask;
using Microsoft.DurableTask.Entities;

namespace DurableTask.Dashboard.Tests;

/// <summary>The orchestrations the tests run on the real SDK worker.</summary>
static class Orchestrations
{
    public const string Greet = "Greet";
    public const string Parent = "Parent";
    public const string Child = "Child";
    public const string Failing = "Failing";
    public const string Flaky = "Flaky";
    public const string WaitForApproval = "WaitForApproval";
    public const string BigOutput = "BigOutput";
    public const string LockAndWait = "LockAndWait";
    public const string Transfer = "Transfer";
    public const string FanOut = "FanOut";
    public const string Alternate = "Alternate";
    public const string Countdown = "Countdown";
    public const string Children = "Children";

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> FlakyCalls = new();

    public static void Register(DurableTaskRegistry r)
    {
        r.AddActivityFunc<string, string>("Say", (_, city) => $"Hello, {city}!");
        r.AddOrchestratorFunc<string, string>(Greet, async (ctx, city) =>
        {
            var a = await ctx.CallActivityAsync<string>("Say", city ?? "Tokyo");
            var b = await ctx.CallActivityAsync<string>("Say", "London");
            return a + " " + b;
        });

        // Two sub-orchestrations with predictable ids, then an activity.
        r.AddOrchestratorFunc<string, string>(Parent, async (ctx, city) =>
        {
            var children = new List<Task<string>>();
            for (int i = 0; i < 2; i++)
            {
                children.Add(ctx.CallSubOrchestratorAsync<string>(Child, $"{city}-{i}",
                    new SubOrchestrationOptions { InstanceId = $"{ctx.InstanceId}-child-{i}" }));
            }

            var results = await Task.WhenAll(children);
            var last = await ctx.CallActivityAsync<string>("Say", city ?? "Paris");
            return string.Join(" | ", results.Append(last));
        });
        r.AddOrchestratorFunc<string, string>(Child, async (ctx, city) =>
        {
            await ctx.CreateTimer(TimeSpan.FromMilliseconds(200), CancellationToken.None);
            return await ctx.CallActivityAsync<string>("Say", city);
        });

        r.AddActivityFunc<string, string>("Explode", string (_, what) =>
        {
            try
            {
                throw new ArgumentException($"the {what} is broken");
            }
            catch (ArgumentException inner)
            {
                throw new InvalidOperationException("the activity gave up", inner);
            }
        });
        r.AddOrchestratorFunc<string, string>(Failing, (ctx, what) => ctx.CallActivityAsync<string>("Explode", what ?? "engine"));

        // Fails the first time it runs for an input, succeeds afterwards: a rewind makes it complete.
        r.AddActivityFunc<string, string>("FailOnce", (_, value) =>
            FlakyCalls.AddOrUpdate(value ?? "", 1, (_, n) => n + 1) == 1 ? throw new InvalidOperationException("first attempt fails") : $"ok {value}");
        r.AddOrchestratorFunc<string, string>(Flaky, (ctx, value) => ctx.CallActivityAsync<string>("FailOnce", value ?? "x"));

        r.AddOrchestratorFunc<string, string>(WaitForApproval, async (ctx, _) =>
        {
            ctx.SetCustomStatus("waiting for approval");
            var approval = await ctx.WaitForExternalEvent<string>("approve");
            return $"approved by {approval}";
        });

        r.AddOrchestratorFunc<int, string>(BigOutput, (ctx, size) => Task.FromResult(new string('x', size)));

        r.AddEntity<Counter>();
        // Holds the lock of the entity named by its input until the event "release" arrives.
        r.AddOrchestratorFunc<string, string>(LockAndWait, async (ctx, key) =>
        {
            var entity = new EntityInstanceId(nameof(Counter), key!);
            await using (await ctx.Entities.LockEntitiesAsync(entity))
            {
                await ctx.WaitForExternalEvent<string>("release");
            }

            return "released";
        });

        // A critical section: two entity calls under the locks of both accounts, then a signal to each after the release.
        r.AddEntity<Account>();
        r.AddOrchestratorFunc<string, int>(Transfer, async (ctx, pair) =>
        {
            var keys = pair!.Split(',');
            var from = new EntityInstanceId(nameof(Account), keys[0]);
            var to = new EntityInstanceId(nameof(Account), keys[1]);
            int left;
            await using (await ctx.Entities.LockEntitiesAsync(from, to))
            {
                left = await ctx.Entities.CallEntityAsync<int>(from, nameof(Account.Withdraw), 30);
                await ctx.Entities.CallEntityAsync<int>(to, nameof(Account.Deposit), 30);
            }

            await ctx.Entities.SignalEntityAsync(from, nameof(Account.Note), "sent 30");
            await ctx.Entities.SignalEntityAsync(to, nameof(Account.Note), "received 30");
            return left;
        });

        // n rounds of two different activities one after the other: a long flow with nothing to group.
        r.AddOrchestratorFunc<int, int>(Alternate, async (ctx, n) =>
        {
            for (int i = 0; i < n; i++)
            {
                await ctx.CallActivityAsync<string>("Say", $"round {i}");
                await ctx.CallActivityAsync<int>("City", i % 49);
            }

            return n;
        });

        // One activity, then continues as new with n - 1 until n is 0: n + 1 executions of one instance.
        r.AddOrchestratorFunc<int, string>(Countdown, async (ctx, n) =>
        {
            await ctx.CallActivityAsync<string>("Say", $"round {n}");
            if (n == 0) return "lift-off";
            ctx.ContinueAsNew(n - 1);
            return "";
        });

        // A fan-out of n sub-orchestrations with predictable ids.
        r.AddOrchestratorFunc<int, int>(Children, async (ctx, n) =>
        {
            var children = Enumerable.Range(0, n).Select(i => ctx.CallSubOrchestratorAsync<string>(Child, $"city-{i}",
                new SubOrchestrationOptions { InstanceId = $"{ctx.InstanceId}-child-{i}" }));
            return (await Task.WhenAll(children)).Length;
        });

        // A fan-out of n activities (every 50th fails), then two sub-orchestrations, then an activity that succeeds on its second attempt.
        r.AddActivityFunc<int, int>("City", (_, i) => i % 50 == 49 ? throw new InvalidOperationException($"city {i} is unreachable") : i);
        r.AddOrchestratorFunc<int, string>(FanOut, async (ctx, n) =>
        {
            var cities = Enumerable.Range(0, n).Select(async i =>
            {
                try
                {
                    return await ctx.CallActivityAsync<int>("City", i);
                }
                catch (TaskFailedException)
                {
                    return -1;
                }
            });
            var results = await Task.WhenAll(cities);
            var children = Enumerable.Range(0, 2).Select(i => ctx.CallSubOrchestratorAsync<string>(Child, $"leg-{i}",
                new SubOrchestrationOptions { InstanceId = $"{ctx.InstanceId}-leg-{i}" }));
            await Task.WhenAll(children);
            var retried = await ctx.CallActivityAsync<string>("FailOnce", ctx.InstanceId,
                new TaskOptions(new TaskRetryOptions(new RetryPolicy(3, TimeSpan.FromMilliseconds(100)))));
            return $"{results.Count(r => r >= 0)} reached, {retried}";
        });
    }
}

public sealed class Counter : TaskEntity<int>
{
    public void Add(int amount) => State += amount;

    public int Get() => State;
}

public sealed class Account : TaskEntity<int>
{
    public int Deposit(int amount) => State += amount;

    public int Withdraw(int amount) => State -= amount;

    public void Note(string text)
    {
    }
}
