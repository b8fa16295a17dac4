using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Entities;

namespace SampleFunctionApp.Api;

/// <summary>Signal an entity and read its state (the aggregator's counter, the critical section's accounts).</summary>
public static class EntityEndpoints
{
    public static IEndpointRouteBuilder MapEntityEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/entities");
        api.MapPost("/{name}/{key}", SignalAsync);
        api.MapGet("/{name}/{key}", GetAsync);
        return app;
    }

    /// <summary>
    /// <c>POST /api/entities/{name}/{key}?op={operation}</c>, body = the operation's JSON input. Signals are one-way:
    /// 202 means the scheduler has queued the operation, which runs shortly after.
    /// </summary>
    static async Task<IResult> SignalAsync(string name, string key, string? op, HttpRequest request, DurableTaskClient client, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(op))
        {
            return Results.Problem(title: "Name the operation with ?op=..., e.g. ?op=add.", statusCode: StatusCodes.Status400BadRequest);
        }

        var (ok, input, error) = await Json.ReadBodyAsync(request, ct);
        if (!ok)
        {
            return error!;
        }

        await client.Entities.SignalEntityAsync(new EntityInstanceId(name, key), op, input, cancellation: ct);
        return Results.Accepted();
    }

    /// <summary><c>GET /api/entities/{name}/{key}</c>: 200 with the state, 404 if the entity has no state.</summary>
    static async Task<IResult> GetAsync(string name, string key, DurableTaskClient client, CancellationToken ct)
    {
        var id = new EntityInstanceId(name, key);
        var entity = await client.Entities.GetEntityAsync(id, includeState: true, ct);
        if (entity is null)
        {
            return Results.Problem(title: $"No entity '{id}'.", statusCode: StatusCodes.Status404NotFound);
        }

        return Results.Json(new EntityStatus(id.Name, id.Key, Json.Embed(entity.IncludesState ? entity.State?.Value : null),
            entity.LastModifiedTime, entity.LockedBy, entity.BacklogQueueSize));
    }
}
