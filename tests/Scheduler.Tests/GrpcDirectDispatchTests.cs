using DurableTask.Scheduler.Tests.Infrastructure;
using Google.Protobuf;
using Grpc.Core;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// With authentication off, calls to known gRPC methods skip endpoint routing and the HTTP middleware. These check
/// what that path must keep: the message size limit of gRPC calls, and that everything it does not know (unknown
/// methods and services, HTTP requests) still gets the regular answers.
/// </summary>
public sealed class GrpcDirectDispatchTests(SchedulerFixture scheduler) : IClassFixture<SchedulerFixture>
{
    static readonly Marshaller<byte[]> Bytes = Marshallers.Create(b => b, b => b);

    async Task<Status> CallAsync(string service, string method, byte[] body)
    {
        var invoker = scheduler.Channel.CreateCallInvoker();
        var m = new Method<byte[], byte[]>(MethodType.Unary, service, method, Bytes, Bytes);
        var options = new CallOptions(new Metadata { { "taskhub", SchedulerFixture.NewHub() } }, DateTime.UtcNow.AddSeconds(30));
        try
        {
            using var call = invoker.AsyncUnaryCall(m, null, options, body);
            await call.ResponseAsync;
            return call.GetStatus();
        }
        catch (RpcException ex)
        {
            return ex.Status;
        }
    }

    static string Service => P.TaskHubSidecarService.Descriptor.FullName;

    [Fact]
    public async Task Known_methods_answer()
    {
        var status = await CallAsync(Service, "Hello", new Google.Protobuf.WellKnownTypes.Empty().ToByteArray());
        Assert.Equal(StatusCode.OK, status.StatusCode);
    }

    [Fact]
    public async Task Unknown_methods_and_services_answer_unimplemented()
    {
        var method = await CallAsync(Service, "NoSuchMethod", []);
        Assert.Equal(StatusCode.Unimplemented, method.StatusCode);
        var service = await CallAsync("NoSuchService", "Hello", []);
        Assert.Equal(StatusCode.Unimplemented, service.StatusCode);
    }

    [Fact]
    public async Task Messages_keep_the_grpc_size_limit_not_the_http_one()
    {
        // 10 MiB: above the HTTP body limit (8 MiB), below the gRPC message limit (16 MiB): the payload check answers.
        var big = new P.CreateInstanceRequest { InstanceId = "i", Name = "A", Input = new string('p', 10 * 1024 * 1024) };
        var payload = await CallAsync(Service, "StartInstance", big.ToByteArray());
        Assert.Equal(StatusCode.InvalidArgument, payload.StatusCode);
        Assert.Contains("MaxPayloadBytes", payload.Detail);

        // 17 MiB: above the gRPC message limit.
        var huge = new P.CreateInstanceRequest { InstanceId = "i", Name = "A", Input = new string('p', 17 * 1024 * 1024) };
        var refused = await CallAsync(Service, "StartInstance", huge.ToByteArray());
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
    }

    [Fact]
    public async Task Http_requests_take_the_regular_pipeline()
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{scheduler.HttpPort}") };
        var health = await http.GetAsync("/healthz");
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
        var missing = await http.GetAsync("/api/taskhubs/" + SchedulerFixture.NewHub() + "/orchestrations/none");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
    }
}
