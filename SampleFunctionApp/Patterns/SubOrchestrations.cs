using System.Collections.Concurrent;
using Microsoft.DurableTask;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Sub-orchestrations with a retry policy: the parent runs one <see cref="ProcessOrder"/> child per order, in
/// parallel. A child that fails is started again after a back-off, up to three attempts, before the parent sees
/// the failure.
/// </summary>
/// <remarks>
/// <c>POST /api/orchestrators/ProcessOrders</c> with body
/// <c>[{"orderId": "A1", "amount": 20}, {"orderId": "B2", "amount": 35, "failFirstAttempt": true}]</c>;
/// the output lists each order with the payment attempt that succeeded (2 for B2).
/// </remarks>
public sealed class ProcessOrders : TaskOrchestrator<Order[]?, List<OrderResult>>
{
    static readonly TaskOptions Retry = TaskOptions.FromRetryPolicy(new RetryPolicy(
        maxNumberOfAttempts: 3,
        firstRetryInterval: TimeSpan.FromSeconds(1),
        backoffCoefficient: 2));

    public override async Task<List<OrderResult>> RunAsync(TaskOrchestrationContext context, Order[]? orders)
    {
        var children = (orders ?? []).Select(order =>
            context.CallSubOrchestratorAsync<OrderResult>(nameof(ProcessOrder), order, Retry));
        return [.. await Task.WhenAll(children)];
    }
}

/// <summary>One order: reserve the stock, then take the payment.</summary>
public sealed class ProcessOrder : TaskOrchestrator<Order, OrderResult>
{
    public override async Task<OrderResult> RunAsync(TaskOrchestrationContext context, Order order)
    {
        await context.CallActivityAsync(nameof(ReserveStock), order);

        // No retry here: a failed payment fails this child, and the parent's policy retries the whole child.
        var attempt = await context.CallActivityAsync<int>(nameof(ChargePayment), order);
        return new OrderResult(order.OrderId, "Completed", attempt);
    }
}

/// <remarks>JSON: <c>{"orderId": "A1", "amount": 20, "failFirstAttempt": false}</c>.</remarks>
public sealed record Order(string OrderId, decimal Amount, bool FailFirstAttempt = false);

/// <summary><c>PaymentAttempt</c> is the attempt of <see cref="ChargePayment"/> that succeeded.</summary>
public sealed record OrderResult(string OrderId, string Status, int PaymentAttempt);

public sealed class ReserveStock(ILogger<ReserveStock> logger) : TaskActivity<Order, object?>
{
    public override Task<object?> RunAsync(TaskActivityContext context, Order order)
    {
        logger.StockReserved(order.OrderId);
        return Task.FromResult<object?>(null);
    }
}

/// <summary>
/// Takes the payment and returns the attempt number. An order with <see cref="Order.FailFirstAttempt"/> simulates a
/// payment provider that is down the first time (per order, per process).
/// </summary>
public sealed class ChargePayment(ILogger<ChargePayment> logger) : TaskActivity<Order, int>
{
    static readonly ConcurrentDictionary<string, int> Attempts = new();

    public override Task<int> RunAsync(TaskActivityContext context, Order order)
    {
        var attempt = Attempts.AddOrUpdate(order.OrderId, 1, (_, n) => n + 1);
        if (order.FailFirstAttempt && attempt == 1)
        {
            logger.PaymentFailed(order.OrderId, attempt);
            throw new InvalidOperationException($"The payment provider is unavailable (order {order.OrderId}, attempt {attempt}).");
        }

        logger.PaymentCharged(order.OrderId, order.Amount, attempt);
        return Task.FromResult(attempt);
    }
}
