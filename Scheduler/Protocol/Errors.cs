using DurableTask.Scheduler.TaskHubs;

namespace DurableTask.Scheduler.Protocol;

/// <summary>The request checks under their earlier names; the rules live in <see cref="RequestRules"/>.</summary>
public static class Errors
{
    public static string? CheckInstanceId(string? instanceId, string field = "instanceId") => RequestRules.CheckInstanceId(instanceId, field);

    public static string? CheckPayload(string? value, string field, int limit, string? name = null) => RequestRules.CheckPayload(value, field, limit, name);

    public static string? CheckTimestamp(Google.Protobuf.WellKnownTypes.Timestamp? ts, string field) => RequestRules.CheckTimestamp(ts, field);
}
