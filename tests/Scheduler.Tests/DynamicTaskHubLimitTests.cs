using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Core;

namespace DurableTask.Scheduler.Tests;

/// <summary>At most two task hubs are created on first use, besides the configured one.</summary>
public sealed class TwoDynamicHubsSchedulerFixture : SchedulerFixture
{
    protected override IEnumerable<string> ExtraArgs => ["--DTS_USE_DYNAMIC_TASK_HUBS=true", "--Scheduler:MaxDynamicTaskHubs=2"];
}

public sealed class DynamicTaskHubLimitTests(TwoDynamicHubsSchedulerFixture scheduler) : IClassFixture<TwoDynamicHubsSchedulerFixture>
{
    [Fact]
    public async Task HubsBeyondTheLimit_AreRefusedWithResourceExhausted_AndExistingHubsKeepWorking()
    {
        await scheduler.Raw("first").HelloAsync(new Google.Protobuf.WellKnownTypes.Empty());
        await scheduler.Raw("second").HelloAsync(new Google.Protobuf.WellKnownTypes.Empty());

        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
            await scheduler.Raw("third").HelloAsync(new Google.Protobuf.WellKnownTypes.Empty()));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("Scheduler:MaxDynamicTaskHubs is 2", refused.Status.Detail);

        // Hubs that exist, the configured one included, still answer.
        await scheduler.Raw("first").HelloAsync(new Google.Protobuf.WellKnownTypes.Empty());
        await scheduler.Raw(null).HelloAsync(new Google.Protobuf.WellKnownTypes.Empty());
    }
}
