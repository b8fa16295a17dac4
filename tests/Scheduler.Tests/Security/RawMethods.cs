using Google.Protobuf.Reflection;
using Grpc.Core;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>Every method of <c>TaskHubSidecarService</c>, callable with raw request bytes (so malformed messages can be sent too).</summary>
public static class RawMethods
{
    static readonly Marshaller<byte[]> Bytes = Marshallers.Create(b => b, b => b);

    public static readonly IReadOnlyList<MethodDescriptor> Descriptors = P.TaskHubSidecarService.Descriptor.Methods.ToList();

    public static readonly IReadOnlyDictionary<string, Method<byte[], byte[]>> ByName = Descriptors.ToDictionary(
        d => d.Name,
        d => new Method<byte[], byte[]>(
            d.IsServerStreaming ? d.IsClientStreaming ? MethodType.DuplexStreaming : MethodType.ServerStreaming
            : d.IsClientStreaming ? MethodType.ClientStreaming : MethodType.Unary,
            P.TaskHubSidecarService.Descriptor.FullName, d.Name, Bytes, Bytes));

    public static IEnumerable<string> Names => Descriptors.Select(d => d.Name);

    /// <summary>
    /// Calls <paramref name="method"/> with <paramref name="request"/> and returns the final status. A server stream that
    /// delivers a first message counts as OK (the stream is then cancelled); one that stays silent until the deadline gives DeadlineExceeded.
    /// </summary>
    public static async Task<Status> CallAsync(CallInvoker invoker, string method, byte[] request, Metadata headers, TimeSpan timeout)
    {
        var m = ByName[method];
        var options = new CallOptions(headers, DateTime.UtcNow + timeout);
        try
        {
            if (m.Type == MethodType.Unary)
            {
                using var call = invoker.AsyncUnaryCall(m, null, options, request);
                await call.ResponseAsync;
                return call.GetStatus();
            }

            using var cts = new CancellationTokenSource();
            using var stream = invoker.AsyncServerStreamingCall(m, null, options.WithCancellationToken(cts.Token), request);
            if (await stream.ResponseStream.MoveNext(CancellationToken.None))
            {
                await cts.CancelAsync();
                return Status.DefaultSuccess;
            }

            return stream.GetStatus();
        }
        catch (RpcException ex)
        {
            return ex.Status;
        }
    }
}
