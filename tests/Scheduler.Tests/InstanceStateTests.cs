using DurableTask.Scheduler.TaskHubs;
using Google.Protobuf.Collections;
using Xunit;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// An instance keeps some of its state in compact forms (the execution id as a GUID, the output as UTF-8, rarely set
/// fields in a side object): every value read back must be exactly the value set, whatever form it is kept in.
/// </summary>
public class InstanceStateTests
{
    static readonly DateTime Created = new(2026, 3, 1, 11, 0, 0, DateTimeKind.Utc);

    static Instance NewInstance() => new("i-1") { CreatedAt = Created, LastUpdatedAt = Created };

    [Theory]
    [InlineData("68fe8b6ecfb745c996e9b396d767e2bf")] // the scheduler's own form
    [InlineData("68FE8B6ECFB745C996E9B396D767E2BF")] // a GUID, but not in the form the GUID would print
    [InlineData("68fe8b6e-cfb7-45c9-96e9-b396d767e2bf")]
    [InlineData("00000000000000000000000000000000")]
    [InlineData("my-execution")]
    [InlineData("")]
    public void Execution_id_reads_back_exactly_while_running_and_once_finished(string executionId)
    {
        var instance = new Instance("i-1") { ExecutionId = executionId };
        Assert.Equal(executionId, instance.ExecutionId);

        instance.AppendHistory(new P.HistoryEvent { EventId = -1, OrchestratorStarted = new P.OrchestratorStartedEvent() });
        instance.PackHistory();
        Assert.Equal(executionId, instance.ExecutionId);

        instance.ExecutionId = "next";
        Assert.Equal("next", instance.ExecutionId);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("[\"Hello, Tokyo!\"]")]
    [InlineData("\"Tökyö ✓ 東京 🗼\"")]
    public void Output_reads_back_exactly(string? output)
    {
        var instance = NewInstance();
        instance.Output = output;
        Assert.Equal(output, instance.Output);
        Assert.Equal(output, instance.ToState(includePayloads: true).Output);
    }

    static void AssertUnset(Instance instance)
    {
        Assert.Null(instance.Version);
        Assert.Null(instance.CustomStatus);
        Assert.Null(instance.Failure);
        Assert.Null(instance.Tags);
        Assert.Null(instance.ParentInstanceId);
        Assert.Null(instance.ScheduledStartAt);
        Assert.Null(instance.DeferredStart);
        Assert.Null(instance.CompletedAt);
        Assert.Equal(default, instance.NotBefore);
        Assert.Equal(0, instance.FailedDeliveries);
        Assert.False(instance.ReplayRequested);
    }

    [Fact]
    public void Rarely_set_fields_read_back_and_reset()
    {
        var instance = NewInstance();
        AssertUnset(instance);

        var at = new DateTime(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);
        var failure = new P.TaskFailureDetails { ErrorType = "E", ErrorMessage = "boom" };
        var tags = new MapField<string, string> { ["app"] = "tests" };
        var start = new P.HistoryEvent { EventId = -1, ExecutionStarted = new P.ExecutionStartedEvent { Name = "n" } };
        instance.Version = "1.0";
        instance.CustomStatus = "\"busy\"";
        instance.Failure = failure;
        instance.Tags = tags;
        instance.ParentInstanceId = "parent";
        instance.ScheduledStartAt = at;
        instance.DeferredStart = start;
        instance.CompletedAt = at.AddMinutes(1);
        instance.NotBefore = at.AddSeconds(5);
        instance.FailedDeliveries = 3;
        instance.ReplayRequested = true;

        Assert.Equal("1.0", instance.Version);
        Assert.Equal("\"busy\"", instance.CustomStatus);
        Assert.Same(failure, instance.Failure);
        Assert.Same(tags, instance.Tags);
        Assert.Equal("parent", instance.ParentInstanceId);
        Assert.Equal(at, instance.ScheduledStartAt);
        Assert.Same(start, instance.DeferredStart);
        Assert.Equal(at.AddMinutes(1), instance.CompletedAt);
        Assert.Equal(at.AddSeconds(5), instance.NotBefore);
        Assert.Equal(3, instance.FailedDeliveries);
        Assert.True(instance.ReplayRequested);

        var state = instance.ToState(includePayloads: true);
        Assert.Equal("1.0", state.Version);
        Assert.Equal("\"busy\"", state.CustomStatus);
        Assert.Equal("parent", state.ParentInstanceId);
        Assert.Equal("tests", state.Tags["app"]);
        Assert.Equal(at, state.ScheduledStartTimestamp.ToDateTime());
        Assert.Equal(at.AddMinutes(1), state.CompletedTimestamp.ToDateTime());

        instance.Version = null;
        instance.CustomStatus = null;
        instance.Failure = null;
        instance.Tags = null;
        instance.ParentInstanceId = null;
        instance.ScheduledStartAt = null;
        instance.DeferredStart = null;
        instance.CompletedAt = null;
        instance.NotBefore = default;
        instance.FailedDeliveries = 0;
        instance.ReplayRequested = false;

        AssertUnset(instance);
    }
}
