using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;

namespace SampleFunctionApp.Api;

/// <summary>
/// The answer to a start request, shaped like Durable Functions' HTTP management payload so existing clients and
/// habits carry over. <c>sendEventPostUri</c> and <c>terminatePostUri</c> keep their <c>{eventName}</c> and
/// <c>{text}</c> placeholders.
/// </summary>
public sealed record HttpManagementPayload(
    string Id,
    string StatusQueryGetUri,
    string SendEventPostUri,
    string TerminatePostUri,
    string SuspendPostUri,
    string ResumePostUri,
    string PurgeHistoryDeleteUri)
{
    public static HttpManagementPayload For(HttpRequest request, string instanceId)
    {
        var instance = $"{request.Scheme}://{request.Host}{request.PathBase}/api/instances/{Uri.EscapeDataString(instanceId)}";
        return new HttpManagementPayload(
            instanceId,
            StatusQueryGetUri: instance,
            SendEventPostUri: instance + "/raiseEvent/{eventName}",
            TerminatePostUri: instance + "/terminate?reason={text}",
            SuspendPostUri: instance + "/suspend?reason={text}",
            ResumePostUri: instance + "/resume?reason={text}",
            PurgeHistoryDeleteUri: instance);
    }
}

/// <summary>An orchestration's status as returned by <c>GET /api/instances/{id}</c>.</summary>
public sealed record InstanceStatus(
    string Name,
    string InstanceId,
    string RuntimeStatus,
    JsonNode? Input,
    JsonNode? CustomStatus,
    JsonNode? Output,
    DateTimeOffset CreatedTime,
    DateTimeOffset LastUpdatedTime,
    FailureInfo? FailureDetails)
{
    public static InstanceStatus From(OrchestrationMetadata m) => new(
        m.Name,
        m.InstanceId,
        m.RuntimeStatus.ToString(),
        Json.Embed(m.SerializedInput),
        Json.Embed(m.SerializedCustomStatus),
        Json.Embed(m.SerializedOutput),
        m.CreatedAt,
        m.LastUpdatedAt,
        m.FailureDetails is { } f ? new FailureInfo(f.ErrorType, f.ErrorMessage) : null);
}

public sealed record FailureInfo(string ErrorType, string ErrorMessage);

/// <summary>An entity as returned by <c>GET /api/entities/{name}/{key}</c>.</summary>
public sealed record EntityStatus(string Name, string Key, JsonNode? State, DateTimeOffset LastModifiedTime, string? LockedBy, int BacklogQueueSize);

static class Json
{
    /// <summary>Stored payloads are JSON text; embed them as JSON, or as a string if they are not valid JSON.</summary>
    public static JsonNode? Embed(string? serialized)
    {
        if (serialized is null)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(serialized);
        }
        catch (JsonException)
        {
            return JsonValue.Create(serialized);
        }
    }

    /// <summary>Reads an optional JSON request body. Returns false (and a 400 result) when it is not JSON.</summary>
    public static async Task<(bool Ok, JsonElement? Value, IResult? Error)> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        using var reader = new StreamReader(request.Body);
        var text = await reader.ReadToEndAsync(ct);
        if (string.IsNullOrWhiteSpace(text))
        {
            return (true, null, null);
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            return (true, document.RootElement.Clone(), null);
        }
        catch (JsonException e)
        {
            return (false, null, Results.Problem(title: "The request body is not valid JSON.", detail: e.Message, statusCode: StatusCodes.Status400BadRequest));
        }
    }
}
