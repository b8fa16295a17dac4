using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace SampleFunctionApp.Api;

/// <summary>
/// The async HTTP API: start an orchestration and get 202 with the URIs to follow it, poll its status (202 while it
/// runs, 200 once it has finished), send it events, terminate, suspend, resume or purge it.
/// </summary>
public static class OrchestrationEndpoints
{
    public static IEndpointRouteBuilder MapOrchestrationEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api");
        api.MapPost("/orchestrators/{name}", StartAsync);
        api.MapGet("/instances/{id}", GetStatusAsync);
        api.MapPost("/instances/{id}/raiseEvent/{eventName}", RaiseEventAsync);
        api.MapPost("/instances/{id}/terminate", TerminateAsync);
        api.MapPost("/instances/{id}/suspend", SuspendAsync);
        api.MapPost("/instances/{id}/resume", ResumeAsync);
        api.MapDelete("/instances/{id}", PurgeAsync);
        return app;
    }

    /// <summary>
    /// <c>POST /api/orchestrators/{name}[?instanceId=...]</c>, body = the JSON input. Any orchestration name is
    /// accepted: the one that runs it may be another worker on the task hub (the JavaScript sample's HelloCitiesJs).
    /// </summary>
    static async Task<IResult> StartAsync(string name, string? instanceId, HttpRequest request, DurableTaskClient client, CancellationToken ct)
    {
        var (ok, input, error) = await Json.ReadBodyAsync(request, ct);
        if (!ok)
        {
            return error!;
        }

        var options = string.IsNullOrWhiteSpace(instanceId) ? null : new StartOrchestrationOptions(InstanceId: instanceId);
        string id;
        try
        {
            id = await client.ScheduleNewOrchestrationInstanceAsync(new TaskName(name), input, options, ct);
        }
        catch (Exception e) when (IsConflict(e))
        {
            return Results.Problem(title: $"An orchestration with instance id '{instanceId}' already exists.", detail: e.Message,
                statusCode: StatusCodes.Status409Conflict);
        }

        var payload = HttpManagementPayload.For(request, id);
        return Results.Json(payload, statusCode: StatusCodes.Status202Accepted, contentType: null)
            .WithHeaders(("Location", payload.StatusQueryGetUri), ("Retry-After", "1"));
    }

    /// <summary><c>GET /api/instances/{id}</c>: 202 while pending, running or suspended; 200 once it has finished; 404 if unknown.</summary>
    static async Task<IResult> GetStatusAsync(string id, HttpRequest request, DurableTaskClient client, CancellationToken ct)
    {
        var metadata = await client.GetInstanceAsync(id, getInputsAndOutputs: true, ct);
        if (metadata is null)
        {
            return NotFound(id);
        }

        var status = InstanceStatus.From(metadata);
        if (IsFinished(metadata.RuntimeStatus))
        {
            return Results.Json(status);
        }

        return Results.Json(status, statusCode: StatusCodes.Status202Accepted)
            .WithHeaders(("Location", HttpManagementPayload.For(request, id).StatusQueryGetUri), ("Retry-After", "1"));
    }

    /// <summary><c>POST /api/instances/{id}/raiseEvent/{eventName}</c>, body = the JSON event payload.</summary>
    static async Task<IResult> RaiseEventAsync(string id, string eventName, HttpRequest request, DurableTaskClient client, CancellationToken ct)
    {
        var (ok, payload, error) = await Json.ReadBodyAsync(request, ct);
        if (!ok)
        {
            return error!;
        }

        if (await CheckRunningAsync(client, id, ct) is { } problem)
        {
            return problem;
        }

        await client.RaiseEventAsync(id, eventName, payload, ct);
        return Results.Accepted();
    }

    /// <summary><c>POST /api/instances/{id}/terminate[?reason=...]</c>.</summary>
    static async Task<IResult> TerminateAsync(string id, string? reason, DurableTaskClient client, CancellationToken ct)
    {
        if (await CheckRunningAsync(client, id, ct) is { } problem)
        {
            return problem;
        }

        await client.TerminateInstanceAsync(id, new TerminateInstanceOptions { Output = reason }, ct);
        return Results.Accepted();
    }

    /// <summary><c>POST /api/instances/{id}/suspend[?reason=...]</c>.</summary>
    static async Task<IResult> SuspendAsync(string id, string? reason, DurableTaskClient client, CancellationToken ct)
    {
        if (await CheckRunningAsync(client, id, ct) is { } problem)
        {
            return problem;
        }

        await client.SuspendInstanceAsync(id, reason, ct);
        return Results.Accepted();
    }

    /// <summary><c>POST /api/instances/{id}/resume[?reason=...]</c>.</summary>
    static async Task<IResult> ResumeAsync(string id, string? reason, DurableTaskClient client, CancellationToken ct)
    {
        if (await CheckRunningAsync(client, id, ct) is { } problem)
        {
            return problem;
        }

        await client.ResumeInstanceAsync(id, reason, ct);
        return Results.Accepted();
    }

    /// <summary><c>DELETE /api/instances/{id}</c>: deletes a finished instance's history; 409 while it still runs.</summary>
    static async Task<IResult> PurgeAsync(string id, DurableTaskClient client, CancellationToken ct)
    {
        var metadata = await client.GetInstanceAsync(id, getInputsAndOutputs: false, ct);
        if (metadata is null)
        {
            return NotFound(id);
        }

        if (!IsFinished(metadata.RuntimeStatus))
        {
            return Results.Problem(title: $"Orchestration '{id}' is {metadata.RuntimeStatus}; only finished instances can be purged.",
                statusCode: StatusCodes.Status409Conflict);
        }

        var result = await client.PurgeInstanceAsync(id, cancellation: ct);
        return result.PurgedInstanceCount == 0 ? NotFound(id) : Results.Json(new { instancesDeleted = result.PurgedInstanceCount });
    }

    static bool IsFinished(OrchestrationRuntimeStatus status) => status is OrchestrationRuntimeStatus.Completed
        or OrchestrationRuntimeStatus.Failed or OrchestrationRuntimeStatus.Terminated
#pragma warning disable CS0618 // Canceled is obsolete but may still be reported.
        or OrchestrationRuntimeStatus.Canceled;
#pragma warning restore CS0618

    /// <summary>404 for an unknown instance, 410 for one that has already finished; null when it can take a command.</summary>
    static async Task<IResult?> CheckRunningAsync(DurableTaskClient client, string id, CancellationToken ct)
    {
        var metadata = await client.GetInstanceAsync(id, getInputsAndOutputs: false, ct);
        if (metadata is null)
        {
            return NotFound(id);
        }

        return IsFinished(metadata.RuntimeStatus)
            ? Results.Problem(title: $"Orchestration '{id}' has already finished ({metadata.RuntimeStatus}).", statusCode: StatusCodes.Status410Gone)
            : null;
    }

    static IResult NotFound(string id) =>
        Results.Problem(title: $"No orchestration with instance id '{id}'.", statusCode: StatusCodes.Status404NotFound);

    static bool IsConflict(Exception e) => e switch
    {
        DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException => true,
        RpcException { StatusCode: StatusCode.AlreadyExists } => true,
        _ => false,
    };
}
