using System.Collections.Frozen;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Security;

/// <summary>
/// The permission each <c>TaskHubSidecarService</c> method requires. A method missing here is refused
/// (PermissionDenied), and a test checks that every method of the service descriptor has an entry.
/// </summary>
public static class MethodPermissions
{
    public static readonly string ServiceName = TaskHubSidecarService.Descriptor.FullName;

    public static readonly FrozenDictionary<string, Permission> ByMethod = new Dictionary<string, Permission>
    {
        // Workers call Hello before every work-item stream; any role may.
        ["Hello"] = Permission.Read,

        ["GetInstance"] = Permission.Read,
        ["WaitForInstanceStart"] = Permission.Read,
        ["WaitForInstanceCompletion"] = Permission.Read,
        ["QueryInstances"] = Permission.Read,
        ["ListInstanceIds"] = Permission.Read,
        ["StreamInstanceHistory"] = Permission.Read,
        ["GetEntity"] = Permission.Read,
        ["QueryEntities"] = Permission.Read,

        ["StartInstance"] = Permission.ClientWrite,
        ["RaiseEvent"] = Permission.ClientWrite,
        ["TerminateInstance"] = Permission.ClientWrite,
        ["SuspendInstance"] = Permission.ClientWrite,
        ["ResumeInstance"] = Permission.ClientWrite,
        ["RestartInstance"] = Permission.ClientWrite,
        ["RewindInstance"] = Permission.ClientWrite,
        ["SignalEntity"] = Permission.ClientWrite,

        ["GetWorkItems"] = Permission.WorkerProcess,
        ["CompleteActivityTask"] = Permission.WorkerProcess,
        ["CompleteOrchestratorTask"] = Permission.WorkerProcess,
        ["CompleteEntityTask"] = Permission.WorkerProcess,
        ["AbandonTaskActivityWorkItem"] = Permission.WorkerProcess,
        ["AbandonTaskOrchestratorWorkItem"] = Permission.WorkerProcess,
        ["AbandonTaskEntityWorkItem"] = Permission.WorkerProcess,

        ["PurgeInstances"] = Permission.Admin,
        ["CleanEntityStorage"] = Permission.Admin,
        ["SkipGracefulOrchestrationTerminations"] = Permission.Admin,
        ["CreateTaskHub"] = Permission.Admin,
        ["DeleteTaskHub"] = Permission.Admin,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    // Audited must be initialised before ByPath, which reads it.
    /// <summary>Management operations written to the audit log with principal, task hub and target.</summary>
    public static readonly FrozenSet<string> Audited = new[]
    {
        "TerminateInstance", "PurgeInstances", "RestartInstance", "RewindInstance", "RaiseEvent", "SuspendInstance",
        "ResumeInstance", "SignalEntity", "CleanEntityStorage", "SkipGracefulOrchestrationTerminations", "CreateTaskHub",
        "DeleteTaskHub",
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Policy by full gRPC path (<c>/package.Service/Method</c>), so a call costs one lookup.</summary>
    public static readonly FrozenDictionary<string, MethodPolicy> ByPath = ByMethod.ToFrozenDictionary(
        p => $"/{ServiceName}/{p.Key}", p => new MethodPolicy(p.Key, p.Value, Audited.Contains(p.Key)), StringComparer.Ordinal);

    /// <summary>Splits <c>/package.Service/Method</c>; null when the path names another service.</summary>
    public static string? MethodName(string path)
    {
        // "/" + service + "/" + method
        if (path.Length < ServiceName.Length + 3 || path[0] != '/' || path[ServiceName.Length + 1] != '/'
            || !path.AsSpan(1, ServiceName.Length).SequenceEqual(ServiceName))
            return null;
        return path[(ServiceName.Length + 2)..];
    }
}

public sealed record MethodPolicy(string Method, Permission Permission, bool Audited);
