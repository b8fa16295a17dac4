using Microsoft.DurableTask.Entities;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Aggregator: a durable entity that many callers update concurrently. Operations on one entity run one at a time,
/// in arrival order, so the running total needs no locks or optimistic retries.
/// </summary>
/// <remarks>
/// Signal it with <c>POST /api/entities/counter/{key}?op=add</c> and body <c>5</c> (also <c>reset</c>, <c>delete</c>),
/// read it with <c>GET /api/entities/counter/{key}</c>.
/// </remarks>
public sealed class Counter : TaskEntity<int>
{
    public int Add(int amount) => State += amount;

    public void Reset() => State = 0;

    public int Get() => State;
}
