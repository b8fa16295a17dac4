using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.TaskHubs;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;

namespace DurableTask.Scheduler.Tests.Domain;

/// <summary>
/// The request rules both the gRPC service and the JSON API apply: each rule refuses what it should, with the kind and
/// the exact message callers see, and lets through what it should.
/// </summary>
public class RequestRulesTests
{
    static TaskHubException Refused(Action check, TaskHubErrorKind kind = TaskHubErrorKind.Invalid)
    {
        var e = Assert.Throws<TaskHubException>(check);
        Assert.Equal(kind, e.Kind);
        return e;
    }

    [Fact]
    public void Instance_ids_are_required_short_and_printable()
    {
        Assert.Equal("instanceId is required", Refused(() => RequestRules.InstanceId(null)).Message);
        Assert.Equal("instanceId is required", Refused(() => RequestRules.InstanceId("")).Message);
        Assert.Equal("instanceId is 101 characters long; the limit is 100 characters",
            Refused(() => RequestRules.InstanceId(new string('a', 101))).Message);
        Assert.Equal("instanceIds contains a non-printable character (U+0007); only printable characters are allowed",
            Refused(() => RequestRules.InstanceId("a\u0007b", "instanceIds")).Message);

        RequestRules.InstanceId(new string('a', 100));
        RequestRules.InstanceId("order-42/é");
        Assert.Null(RequestRules.CheckInstanceId("x"));
        Assert.Equal("the sub-orchestration instance id is required", RequestRules.CheckInstanceId("", "the sub-orchestration instance id"));
    }

    [Fact]
    public void Names_are_required_and_at_most_1024_characters()
    {
        Assert.Equal("name is required", Refused(() => RequestRules.Name(null)).Message);
        Assert.Equal("operation is required", Refused(() => RequestRules.Name("  ", "operation")).Message);
        Assert.Equal("name is 1025 characters long; the limit is 1024 characters", Refused(() => RequestRules.Name(new string('n', 1025))).Message);
        RequestRules.Name(new string('n', 1024));
    }

    [Fact]
    public void Payloads_over_the_limit_are_too_large_counted_in_utf8_bytes()
    {
        Assert.Equal("input is 11 bytes, which exceeds the maximum payload size of 10 bytes (Scheduler:MaxPayloadBytes)",
            Refused(() => RequestRules.Payload(new string('x', 11), "input", 10), TaskHubErrorKind.TooLarge).Message);
        // Four characters of three bytes each: 12 bytes.
        Assert.Equal("the payload of event 'Approve' is 12 bytes, which exceeds the maximum payload size of 10 bytes (Scheduler:MaxPayloadBytes)",
            Refused(() => RequestRules.Payload("€€€€", "the payload of event", 10, "Approve"), TaskHubErrorKind.TooLarge).Message);

        RequestRules.Payload(new string('x', 10), "input", 10);
        RequestRules.Payload(null, "input", 10);
        Assert.Null(RequestRules.CheckPayload("€€€", "input", 9));
    }

    [Fact]
    public void Timestamps_must_lie_in_the_range_protobuf_allows()
    {
        const string Range = "(seconds must be between -62135596800 and 253402300799)";
        Assert.Equal($"scheduledTime is not a valid timestamp {Range}",
            Refused(() => RequestRules.Timestamp(new Timestamp { Seconds = 253402300800 }, "scheduledTime")).Message);
        Assert.Equal($"t is not a valid timestamp {Range}", RequestRules.CheckTimestamp(new Timestamp { Seconds = -62135596801 }, "t"));
        Assert.Equal($"t is not a valid timestamp {Range}", RequestRules.CheckTimestamp(new Timestamp { Nanos = -1 }, "t"));
        Assert.Equal($"t is not a valid timestamp {Range}", RequestRules.CheckTimestamp(new Timestamp { Nanos = 1_000_000_000 }, "t"));
        Assert.Null(RequestRules.CheckTimestamp(null, "t"));
        Assert.Null(RequestRules.CheckTimestamp(new Timestamp { Seconds = 253402300799, Nanos = 999_999_999 }, "t"));
    }

    [Fact]
    public void A_scheduled_time_not_in_the_future_means_now()
    {
        var future = Timestamp.FromDateTime(DateTime.UtcNow.AddHours(1));
        Assert.Same(future, RequestRules.Scheduled(future, "scheduledStartTimestamp"));
        Assert.Null(RequestRules.Scheduled(new Timestamp(), "scheduledStartTimestamp")); // the Unix epoch some clients send for "now"
        Assert.Null(RequestRules.Scheduled(Timestamp.FromDateTime(DateTime.UtcNow.AddSeconds(-1)), "scheduledStartTimestamp"));
        Assert.Null(RequestRules.Scheduled((Timestamp?)null, "scheduledStartTimestamp"));
        Assert.StartsWith("scheduledStartTimestamp is not a valid timestamp",
            Refused(() => RequestRules.Scheduled(new Timestamp { Seconds = long.MaxValue }, "scheduledStartTimestamp")).Message);

        var at = DateTime.UtcNow.AddMinutes(5);
        Assert.Equal(Timestamp.FromDateTime(at), RequestRules.Scheduled(at));
        Assert.Null(RequestRules.Scheduled(DateTime.UtcNow.AddMinutes(-5)));
        Assert.Null(RequestRules.Scheduled((DateTime?)null));
    }

    [Fact]
    public void Tags_sent_over_grpc_are_limited_in_number_key_and_value_length()
    {
        var many = new MapField<string, string>();
        for (int i = 0; i < 65; i++) many[$"k{i}"] = "v";
        Assert.Equal("tags has 65 entries; the limit is 64", Refused(() => RequestRules.Tags(many)).Message);
        many.Remove("k0");
        RequestRules.Tags(many);

        Assert.Equal("tag key '' must be 1-256 characters long", Refused(() => RequestRules.Tags(new MapField<string, string> { [""] = "v" })).Message);
        Assert.Equal($"tag key '{new string('k', 40)}...' must be 1-256 characters long",
            Refused(() => RequestRules.Tags(new MapField<string, string> { [new string('k', 257)] = "v" })).Message);
        Assert.Equal("the value of tag 'env' is 1025 characters long; the limit is 1024",
            Refused(() => RequestRules.Tags(new MapField<string, string> { ["env"] = new string('v', 1025) })).Message);
        RequestRules.Tags(new MapField<string, string> { [new string('k', 256)] = new string('v', 1024) });
    }

    [Fact]
    public void Tags_given_in_json_have_the_same_limits_and_need_a_value()
    {
        var many = new Dictionary<string, string>();
        for (int i = 0; i < 65; i++) many[$"k{i}"] = "v";
        Assert.Equal("tags has 65 entries; the limit is 64", Refused(() => RequestRules.Tags(many)).Message);

        Assert.Equal("a tag key must be 1-256 characters long", Refused(() => RequestRules.Tags(new Dictionary<string, string> { [""] = "v" })).Message);
        Assert.Equal("a tag key must be 1-256 characters long",
            Refused(() => RequestRules.Tags(new Dictionary<string, string> { [new string('k', 257)] = "v" })).Message);
        Assert.Equal("the value of tag 'env' must be a string of at most 1024 characters",
            Refused(() => RequestRules.Tags(new Dictionary<string, string> { ["env"] = new string('v', 1025) })).Message);
        Assert.Equal("the value of tag 'env' must be a string of at most 1024 characters",
            Refused(() => RequestRules.Tags(new Dictionary<string, string> { ["env"] = null! })).Message);
        RequestRules.Tags(new Dictionary<string, string> { [new string('k', 256)] = new string('v', 1024) });
    }

    [Fact]
    public void Entity_ids_have_the_form_at_name_at_key()
    {
        Assert.Equal("entityId is required", Refused(() => RequestRules.EntityId("", "entityId")).Message);
        Assert.Equal("instanceId 'counter' is not an entity id; entity ids have the form '@name@key'",
            Refused(() => RequestRules.EntityId("counter")).Message);
        RequestRules.EntityId("@counter@a");
    }

    [Theory]
    [InlineData("Counter", "@counter")]
    [InlineData("@Counter", "@counter")]
    [InlineData("@Counter@Key-A", "@counter@Key-A")]
    [InlineData("Counter@Key", "@counter@Key")]
    public void Entity_id_prefixes_name_the_entity_in_lower_case(string prefix, string expected) =>
        Assert.Equal(expected, RequestRules.EntityIdPrefix(prefix));
}
