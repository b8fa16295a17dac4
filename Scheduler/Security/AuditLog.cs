namespace DurableTask.Scheduler.Security;

/// <summary>Management operations and refused calls, logged under the category <c>DurableTask.Scheduler.Audit</c>.</summary>
public static partial class AuditLog
{
    public const string Category = "DurableTask.Scheduler.Audit";

    [LoggerMessage(100, LogLevel.Information, "{Principal} from {Peer}: {Operation} on task hub '{Hub}', target {Target}: {Outcome}")]
    public static partial void Operation(ILogger logger, string principal, string peer, string operation, string hub, string target, string outcome);

    [LoggerMessage(101, LogLevel.Warning, "{Principal} from {Peer} was refused {Operation} on task hub '{Hub}': it lacks permission {Permission}")]
    public static partial void Denied(ILogger logger, string principal, string peer, string operation, string hub, Permission permission);

    [LoggerMessage(102, LogLevel.Information, "Unauthenticated call from {Peer} to {Operation} refused ({Reason})")]
    public static partial void Unauthenticated(ILogger logger, string peer, string operation, string reason);

    [LoggerMessage(103, LogLevel.Error, "{Operation} has no access policy and was refused; give it one (MethodPermissions or RequirePermission)")]
    public static partial void NoPolicy(ILogger logger, string operation);
}

static partial class SecurityLogs
{
    [LoggerMessage(110, LogLevel.Warning, "Authentication is off and the scheduler listens on '{BindAddress}': every caller on the network has full access (Scheduler:Authentication:AllowAnonymousOnNetwork=true).")]
    public static partial void AnonymousOnNetwork(ILogger logger, string bindAddress);

    [LoggerMessage(111, LogLevel.Warning, "Authentication is on but TLS is not configured (Scheduler:Tls:CertificatePath) while listening on '{BindAddress}': tokens and keys cross the network in clear text.")]
    public static partial void CredentialsWithoutTls(ILogger logger, string bindAddress);

    [LoggerMessage(112, LogLevel.Information, "Authentication: {Modes}; TLS: {Tls}.")]
    public static partial void Summary(ILogger logger, AuthenticationModes modes, string tls);
}
