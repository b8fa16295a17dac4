using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// The changes clients ask for. Each one fails at once while the hub cannot write (store down, hub moved), loads the
/// instance from the store when it is not in memory, applies the change under the hub's lock and completes once the
/// change is durable: nothing is acknowledged before its commit. When the change is already durable (or the hub
/// keeps no store) the returned task is already complete, and nothing is allocated for the wait.
/// </summary>
public sealed partial class TaskHub
{
    public ValueTask<string> StartInstanceAsync(CreateInstanceRequest request, CancellationToken cancellationToken = default) =>
        ChangeAsync(request.InstanceId, request, static (hub, request) => hub.StartInstance(request), cancellationToken);

    public ValueTask RaiseEventAsync(string instanceId, string name, string? input, CancellationToken cancellationToken = default) =>
        ChangeAsync(instanceId, (instanceId, name, input), static (hub, e) => hub.RaiseEvent(e.instanceId, e.name, e.input), cancellationToken);

    public async ValueTask TerminateAsync(string instanceId, string? output, bool recursive, CancellationToken cancellationToken = default)
    {
        // The termination tells a parent that is only in the store once it is read back: read it first.
        await EnsureParentLoadedAsync(instanceId, cancellationToken).ConfigureAwait(false);
        await ChangeAsync(instanceId, (instanceId, output, recursive), static (hub, t) => hub.Terminate(t.instanceId, t.output, t.recursive), cancellationToken)
            .ConfigureAwait(false);
    }

    public ValueTask SuspendAsync(string instanceId, string? reason, CancellationToken cancellationToken = default) =>
        ChangeAsync(instanceId, (instanceId, reason), static (hub, s) => hub.Suspend(s.instanceId, s.reason), cancellationToken);

    public ValueTask ResumeAsync(string instanceId, string? reason, CancellationToken cancellationToken = default) =>
        ChangeAsync(instanceId, (instanceId, reason), static (hub, r) => hub.Resume(r.instanceId, r.reason), cancellationToken);

    public ValueTask<string> RestartAsync(string instanceId, bool newInstanceId, CancellationToken cancellationToken = default) =>
        ChangeAsync(instanceId, (instanceId, newInstanceId), static (hub, r) => hub.Restart(r.instanceId, r.newInstanceId), cancellationToken);

    public ValueTask RewindAsync(string instanceId, string? reason, CancellationToken cancellationToken = default) =>
        ChangeAsync(instanceId, (instanceId, reason), static (hub, r) => hub.Rewind(r.instanceId, r.reason), cancellationToken);

    /// <summary>
    /// One change to one instance: refused at once while the hub cannot write, applied once the instance is in memory,
    /// complete once durable. The change is a static lambda and its arguments travel as <paramref name="state"/>, so
    /// nothing is allocated when the instance is in memory and the commit needs no wait.
    /// </summary>
    async ValueTask<TResult> ChangeAsync<TState, TResult>(string instanceId, TState state, Func<TaskHub, TState, TResult> apply, CancellationToken cancellationToken)
    {
        EnsureWritable();
        await EnsureLoadedAsync(instanceId, cancellationToken).ConfigureAwait(false);
        var result = apply(this, state);
        await FlushAsync().ConfigureAwait(false);
        return result;
    }

    /// <inheritdoc cref="ChangeAsync{TState, TResult}"/>
    async ValueTask ChangeAsync<TState>(string instanceId, TState state, Action<TaskHub, TState> apply, CancellationToken cancellationToken)
    {
        EnsureWritable();
        await EnsureLoadedAsync(instanceId, cancellationToken).ConfigureAwait(false);
        apply(this, state);
        await FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Purges one finished instance (and, if asked, its finished sub-orchestrations); 0 when it does not exist.</summary>
    public async ValueTask<int> PurgeAsync(string instanceId, bool recursive, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        if (recursive) await EnsureTreeLoadedAsync(instanceId, cancellationToken).ConfigureAwait(false);
        else await EnsureLoadedAsync(instanceId, cancellationToken).ConfigureAwait(false);
        int deleted = Purge(instanceId, recursive);
        await FlushAsync().ConfigureAwait(false);
        return deleted;
    }

    public async ValueTask<int> PurgeAsync(IReadOnlyCollection<string> instanceIds, bool recursive, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        foreach (var id in instanceIds)
        {
            if (recursive) await EnsureTreeLoadedAsync(id, cancellationToken).ConfigureAwait(false);
            else await EnsureLoadedAsync(id, cancellationToken).ConfigureAwait(false);
        }

        int deleted = Purge(instanceIds, recursive);
        await FlushAsync().ConfigureAwait(false);
        return deleted;
    }

    /// <summary>Purges the finished instances that match, in memory and in the store, within <paramref name="timeout"/>.</summary>
    public async Task<(int Deleted, bool Complete)> PurgeAsync(InstanceFilter filter, bool recursive, TimeSpan? timeout, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        var result = await PurgeMatchingAsync(filter, recursive, timeout, cancellationToken).ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Purges the finished instances that match without checking first that the hub can write or waiting for the
    /// commit at the end: for the retention service, which waits for the commit itself when something was purged.
    /// </summary>
    public async Task<(int Deleted, bool Complete)> PurgeMatchingAsync(InstanceFilter filter, bool recursive, TimeSpan? timeout, CancellationToken cancellationToken = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (deleted, complete) = Purge(filter, recursive, timeout);
        if (!complete || !_instances.Spilled) return (deleted, complete);
        // What was just purged from memory is gone from the store before the store is scanned, so nothing counts twice.
        await FlushAsync().ConfigureAwait(false);
        var (more, done) = await PurgeStoredAsync(filter, recursive, () => timeout is { } limit && clock.Elapsed > limit, cancellationToken).ConfigureAwait(false);
        return (deleted + more, done);
    }

    /// <summary>An instance a change of a bulk action could not be applied to, and why.</summary>
    public sealed record InstanceFailure(string InstanceId, string Error);

    /// <summary>What a bulk action did: how many instances it changed, the ones it could not change, and what the changes returned.</summary>
    public sealed record BulkOutcome(int Succeeded, List<InstanceFailure> Failures, List<string> Results);

    /// <summary>Terminates each instance; one refusal does not stop the others. Completes once all the changes are durable.</summary>
    public Task<BulkOutcome> TerminateEachAsync(IReadOnlyList<string> instanceIds, string? output, bool recursive, CancellationToken cancellationToken = default) =>
        EachAsync(instanceIds, id =>
        {
            Terminate(id, output, recursive);
            return null;
        }, cancellationToken);

    /// <summary>
    /// Ends each instance as terminated at once, without an episode: its orchestrator code does not run again, the
    /// messages it has not processed are dropped, its parent is told. Instances that do not exist, have finished or
    /// hold entity locks are left alone and returned. Completes once the changes are durable.
    /// </summary>
    public async Task<List<string>> TerminateAtOnceAsync(IReadOnlyList<string> instanceIds, string? reason, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        var untouched = new List<string>();
        foreach (var id in instanceIds)
        {
            await EnsureParentLoadedAsync(id, cancellationToken).ConfigureAwait(false);
            await EnsureLoadedAsync(id, cancellationToken).ConfigureAwait(false);
            if (!TerminateAtOnce(id, reason)) untouched.Add(id);
        }

        await FlushAsync().ConfigureAwait(false);
        return untouched;
    }

    /// <summary>Restarts each instance; one refusal does not stop the others. The results are the restarted instances' ids.</summary>
    public Task<BulkOutcome> RestartEachAsync(IReadOnlyList<string> instanceIds, bool newInstanceId, CancellationToken cancellationToken = default) =>
        EachAsync(instanceIds, id => Restart(id, newInstanceId), cancellationToken);

    /// <summary>Suspends (or resumes) each instance; one refusal does not stop the others.</summary>
    public Task<BulkOutcome> SetSuspendedEachAsync(IReadOnlyList<string> instanceIds, string? reason, bool suspend, CancellationToken cancellationToken = default) =>
        EachAsync(instanceIds, id =>
        {
            SetSuspended(id, reason, suspend);
            return null;
        }, cancellationToken);

    /// <summary>Rewinds each instance; one that has not failed is refused, with the reason, and the others go on.</summary>
    public Task<BulkOutcome> RewindEachAsync(IReadOnlyList<string> instanceIds, string? reason, CancellationToken cancellationToken = default) =>
        EachAsync(instanceIds, id =>
        {
            Rewind(id, reason);
            return null;
        }, cancellationToken);

    /// <summary>Raises one event in each instance; one refusal does not stop the others.</summary>
    public Task<BulkOutcome> RaiseEventEachAsync(IReadOnlyList<string> instanceIds, string name, string? input, CancellationToken cancellationToken = default) =>
        EachAsync(instanceIds, id =>
        {
            RaiseEvent(id, name, input);
            return null;
        }, cancellationToken);

    /// <summary>One change per instance, applied in turn, then one wait for the commit that makes them all durable.</summary>
    async Task<BulkOutcome> EachAsync(IReadOnlyList<string> instanceIds, Func<string, string?> change, CancellationToken cancellationToken)
    {
        EnsureWritable();
        var failures = new List<InstanceFailure>();
        var results = new List<string>();
        foreach (var id in instanceIds)
        {
            try
            {
                await EnsureLoadedAsync(id, cancellationToken).ConfigureAwait(false);
                if (change(id) is { } result) results.Add(result);
            }
            catch (Domain.TaskHubException e)
            {
                failures.Add(new InstanceFailure(id, e.Message));
            }
        }

        await FlushAsync().ConfigureAwait(false);
        return new BulkOutcome(instanceIds.Count - failures.Count, failures, results);
    }

    // ---- Entities ----

    public async ValueTask SignalEntityAsync(SignalEntityRequest request)
    {
        EnsureWritable();
        SignalEntity(request);
        await FlushAsync().ConfigureAwait(false);
    }

    public async ValueTask<(int EmptyRemoved, int LocksReleased)> CleanEntityStorageAsync(bool removeEmpty, bool releaseOrphanedLocks)
    {
        EnsureWritable();
        var result = CleanEntityStorage(removeEmpty, releaseOrphanedLocks);
        await FlushAsync().ConfigureAwait(false);
        return result;
    }

    /// <summary>Deletes an entity's state; 0 when it has none.</summary>
    public async ValueTask<int> PurgeEntityAsync(string instanceId)
    {
        EnsureWritable();
        int deleted = PurgeEntity(instanceId);
        await FlushAsync().ConfigureAwait(false);
        return deleted;
    }

    /// <summary>A worker's result of an entity batch.</summary>
    public async ValueTask CompleteEntityAsync(EntityBatchResult result, CancellationToken cancellationToken)
    {
        EnsureWritable();
        await PreloadAsync(result, cancellationToken).ConfigureAwait(false);
        CompleteEntity(result);
        await FlushAsync().ConfigureAwait(false);
    }
}
