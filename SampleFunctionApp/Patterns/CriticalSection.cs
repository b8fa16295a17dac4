using Microsoft.DurableTask;
using Microsoft.DurableTask.Entities;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Critical section: move money between two account entities. Locking both accounts first means no other
/// orchestration can touch either balance between the check and the two updates; the locks are taken in a fixed
/// order by the scheduler, so two opposite transfers cannot deadlock.
/// </summary>
/// <remarks>
/// Fund an account with <c>POST /api/entities/account/alice?op=deposit</c> and body <c>100</c>, then
/// <c>POST /api/orchestrators/TransferFunds</c> with body <c>{"from": "alice", "to": "bob", "amount": 30}</c>.
/// </remarks>
public sealed class TransferFunds : TaskOrchestrator<TransferRequest, TransferResult>
{
    public override async Task<TransferResult> RunAsync(TaskOrchestrationContext context, TransferRequest request)
    {
        if (request.Amount <= 0 || string.Equals(request.From, request.To, StringComparison.Ordinal))
        {
            throw new ArgumentException("A transfer needs a positive amount and two different accounts.");
        }

        var from = new EntityInstanceId(nameof(Account), request.From);
        var to = new EntityInstanceId(nameof(Account), request.To);

        await using (await context.Entities.LockEntitiesAsync(from, to))
        {
            var balance = await context.Entities.CallEntityAsync<int>(from, nameof(Account.Get));
            if (balance < request.Amount)
            {
                return new TransferResult(Transferred: false, FromBalance: balance,
                    ToBalance: await context.Entities.CallEntityAsync<int>(to, nameof(Account.Get)));
            }

            var fromBalance = await context.Entities.CallEntityAsync<int>(from, nameof(Account.Withdraw), request.Amount);
            var toBalance = await context.Entities.CallEntityAsync<int>(to, nameof(Account.Deposit), request.Amount);
            return new TransferResult(Transferred: true, fromBalance, toBalance);
        }
    }
}

/// <remarks>JSON: <c>{"from": "alice", "to": "bob", "amount": 30}</c>.</remarks>
public sealed record TransferRequest(string From, string To, int Amount);

public sealed record TransferResult(bool Transferred, int FromBalance, int ToBalance);

/// <summary>A bank account whose state is its balance.</summary>
public sealed class Account : TaskEntity<int>
{
    public int Deposit(int amount) => State += amount;

    public int Withdraw(int amount)
    {
        if (amount > State)
        {
            throw new InvalidOperationException($"Insufficient funds: balance {State}, withdrawal {amount}.");
        }

        return State -= amount;
    }

    public int Get() => State;
}
