using Grpc.Core;
using Grpc.Core.Interceptors;

namespace SampleFunctionApp.Hosting;

/// <summary>
/// Adds the <c>taskhub</c> header to every call, the way the scheduler (like Azure Durable Task Scheduler) picks the
/// task hub. An interceptor rather than call credentials, because credentials are dropped on cleartext channels.
/// </summary>
public sealed class TaskHubInterceptor(string taskHub, string? apiKey = null) : Interceptor
{
    public const string HeaderName = "taskhub";

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithTaskHub(context));

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        BlockingUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithTaskHub(context));

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithTaskHub(context));

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context,
        AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(WithTaskHub(context));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context,
        AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(WithTaskHub(context));

    ClientInterceptorContext<TRequest, TResponse> WithTaskHub<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
        where TRequest : class
        where TResponse : class
    {
        var headers = context.Options.Headers ?? new Metadata();
        if (headers.Get(HeaderName) is null)
        {
            headers.Add(HeaderName, taskHub);
        }

        if (apiKey is not null && headers.Get("authorization") is null)
        {
            headers.Add("authorization", "Bearer " + apiKey);
        }

        return new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithHeaders(headers));
    }
}
