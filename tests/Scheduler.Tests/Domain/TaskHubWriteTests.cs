using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.DurableTask.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableTask.Scheduler.Tests.Domain;

/// <summary>
/// A task hub's write operations complete once their change is durable, refuse to write while the hub may not, and a
/// bulk action reports each instance it could not change.
/// </summary>
public class TaskHubWriteTests
{
    /// <summary>A durable store that holds every commit until it is let through.</summary>
    sealed class GatedStore : ITaskHubStore
    {
        readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly TaskCompletionSource _committing = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Committing => _committing.Task;
        public void Open() => _open.TrySetResult();

        public bool IsDurable => true;
        public Task<StoredHub> LoadAsync(int maxFinishedInstances, CancellationToken cancellationToken) => Task.FromResult(new StoredHub());

        public async Task CommitAsync(CommitBatch batch, CancellationToken cancellationToken)
        {
            _committing.TrySetResult();
            await _open.Task.WaitAsync(cancellationToken);
        }

        public Task<IReadOnlyList<HistoryBlock>> ReadHistoryAsync(string instanceId, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<HistoryBlock>>([]);

        public Task<StoredInstance?> ReadInstanceAsync(string instanceId, CancellationToken cancellationToken) => Task.FromResult<StoredInstance?>(null);

        public async IAsyncEnumerable<InstanceRecord> ScanInstancesAsync(InstanceScan scan, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.CompletedTask;
            yield break;
        }

        public Task<bool> IsHealthyAsync(CancellationToken cancellationToken) => Task.FromResult(true);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    static TaskHub NewHub() => new("writes", new SchedulerOptions(), TimeProvider.System, NullLogger<TaskHub>.Instance);

    static CreateInstanceRequest Start(string id) => new() { InstanceId = id, Name = "Orchestration" };

    [Fact]
    public async Task A_start_completes_only_once_its_commit_is_durable()
    {
        var store = new GatedStore();
        var hub = NewHub();
        await hub.OpenAsync(store, CancellationToken.None);
        try
        {
            var start = hub.StartInstanceAsync(Start("a")).AsTask();
            await store.Committing.WaitAsync(TimeSpan.FromSeconds(10));
            await Task.Delay(100);
            Assert.False(start.IsCompleted);
            Assert.NotNull(await hub.GetStateAsync("a", includePayloads: false)); // applied, not yet acknowledged

            store.Open();
            Assert.Equal("a", await start.WaitAsync(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            store.Open();
            hub.Stop();
            await hub.CloseAsync();
        }
    }

    [Fact]
    public async Task Without_a_store_a_write_completes_at_once()
    {
        var hub = NewHub();
        var start = hub.StartInstanceAsync(Start("a"));
        Assert.True(start.IsCompletedSuccessfully);
        Assert.Equal("a", await start);
        Assert.True(hub.TerminateAsync("a", "stop", recursive: false).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Writes_report_the_outcome_kinds()
    {
        var hub = NewHub();
        await hub.StartInstanceAsync(Start("a"));

        var exists = await Assert.ThrowsAsync<TaskHubException>(() => hub.StartInstanceAsync(Start("a")).AsTask());
        Assert.Equal(TaskHubErrorKind.AlreadyExists, exists.Kind);
        Assert.Equal("an orchestration with instance id 'a' already exists and is Pending", exists.Message);

        var missing = await Assert.ThrowsAsync<TaskHubException>(() => hub.RaiseEventAsync("b", "e", null).AsTask());
        Assert.Equal(TaskHubErrorKind.NotFound, missing.Kind);
        Assert.Equal("orchestration instance 'b' not found", missing.Message);

        var running = await Assert.ThrowsAsync<TaskHubException>(() => hub.PurgeAsync("a", recursive: false).AsTask());
        Assert.Equal(TaskHubErrorKind.WrongState, running.Kind);
        Assert.Equal("orchestration instance 'a' is Pending; only completed, failed or terminated instances can be purged", running.Message);
    }

    [Fact]
    public async Task A_hub_that_moved_refuses_writes_before_changing_anything()
    {
        var hub = NewHub();
        hub.Fence("lease lost");
        var moved = await Assert.ThrowsAsync<TaskHubException>(() => hub.StartInstanceAsync(Start("a")).AsTask());
        Assert.Equal(TaskHubErrorKind.Moved, moved.Kind);
        Assert.Equal("task hub 'writes' moved to another scheduler replica (lease lost); retry", moved.Message);
        Assert.Null(await hub.GetStateAsync("a", includePayloads: false));
    }

    [Fact]
    public async Task A_bulk_action_goes_on_past_an_instance_it_cannot_change()
    {
        var hub = NewHub();
        await hub.StartInstanceAsync(Start("a"));
        await hub.StartInstanceAsync(Start("c"));

        var outcome = await hub.TerminateEachAsync(["a", "b", "c"], output: null, recursive: false);
        Assert.Equal(2, outcome.Succeeded);
        Assert.Equal([new TaskHub.InstanceFailure("b", "orchestration instance 'b' not found")], outcome.Failures);
        Assert.Equal(OrchestrationStatus.Terminated, (await hub.GetStateAsync("a", includePayloads: false))!.OrchestrationStatus);

        var restarted = await hub.RestartEachAsync(["a", "b"], newInstanceId: false);
        Assert.Equal(1, restarted.Succeeded);
        Assert.Equal(["a"], restarted.Results);
        Assert.Equal("b", Assert.Single(restarted.Failures).InstanceId);
    }
}
