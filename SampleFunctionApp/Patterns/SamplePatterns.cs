using Microsoft.DurableTask;

namespace SampleFunctionApp.Patterns;

public static class SamplePatterns
{
    /// <summary>Registers every orchestration, activity and entity of the samples under its class name.</summary>
    public static DurableTaskRegistry AddSamplePatterns(this DurableTaskRegistry registry) => registry
        // Function chaining
        .AddOrchestrator<HelloCities>()
        .AddActivity<SayHello>()
        // Fan-out/fan-in
        .AddOrchestrator<WordCount>()
        .AddActivity<CountWords>()
        // Async HTTP API
        .AddOrchestrator<LongRunningJob>()
        .AddActivity<ProcessJobStep>()
        // Monitor
        .AddOrchestrator<JobMonitor>()
        .AddActivity<CheckJobStatus>()
        // Human interaction
        .AddOrchestrator<ApprovalWorkflow>()
        .AddActivity<RequestApproval>()
        .AddActivity<EscalateApproval>()
        // Aggregator
        .AddEntity<Counter>()
        // Critical section
        .AddOrchestrator<TransferFunds>()
        .AddEntity<Account>()
        // Sub-orchestrations with retries
        .AddOrchestrator<ProcessOrders>()
        .AddOrchestrator<ProcessOrder>()
        .AddActivity<ReserveStock>()
        .AddActivity<ChargePayment>()
        // Eternal orchestration
        .AddOrchestrator<PeriodicCleanup>()
        .AddActivity<CleanupOldRecords>();
}
