using System.Diagnostics;
using Microsoft.DurableTask.Client;

namespace DurableTask.Scheduler.Tests.Infrastructure;

public static class Waits
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(60);

    /// <summary>Waits until the instance is terminal, failing with its current state after <paramref name="timeout"/>.</summary>
    public static async Task<OrchestrationMetadata> CompletionAsync(this DurableTaskClient client, string instanceId, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Default);
        try
        {
            return await client.WaitForInstanceCompletionAsync(instanceId, getInputsAndOutputs: true, cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            var state = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true);
            throw new TimeoutException(
                $"Instance '{instanceId}' did not complete within {(timeout ?? Default).TotalSeconds} s; it is {Describe(state)}.");
        }
    }

    /// <summary>Completes and asserts the status is <see cref="OrchestrationRuntimeStatus.Completed"/>.</summary>
    public static async Task<OrchestrationMetadata> CompletedAsync(this DurableTaskClient client, string instanceId, TimeSpan? timeout = null)
    {
        var state = await client.CompletionAsync(instanceId, timeout);
        Assert.True(state.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
            $"Instance '{instanceId}' ended {Describe(state)}.");
        return state;
    }

    /// <summary>Polls the instance until <paramref name="condition"/> holds.</summary>
    public static Task<OrchestrationMetadata> StateAsync(this DurableTaskClient client, string instanceId,
        Func<OrchestrationMetadata, bool> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(async () => (await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true))!,
            s => s is not null && condition(s), $"instance '{instanceId}' {what}", timeout, Describe);

    public static Task<OrchestrationMetadata> StatusAsync(this DurableTaskClient client, string instanceId,
        OrchestrationRuntimeStatus status, TimeSpan? timeout = null) =>
        client.StateAsync(instanceId, s => s.RuntimeStatus == status, $"to be {status}", timeout);

    public static async Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> condition, string what, TimeSpan? timeout = null,
        Func<T, string>? describe = null)
    {
        var limit = timeout ?? Default;
        var sw = Stopwatch.StartNew();
        T value = await read();
        while (!condition(value))
        {
            if (sw.Elapsed > limit)
            {
                throw new TimeoutException($"Timed out after {limit.TotalSeconds} s waiting for {what}; last value: " +
                    (describe is null ? value?.ToString() : describe(value)));
            }

            await Task.Delay(50);
            value = await read();
        }

        return value;
    }

    public static string Describe(OrchestrationMetadata? state) => state is null
        ? "missing"
        : $"{state.RuntimeStatus} (output {state.SerializedOutput ?? "null"}, custom status {state.SerializedCustomStatus ?? "null"}" +
          (state.FailureDetails is null ? ")" : $", failure {state.FailureDetails})");
}
