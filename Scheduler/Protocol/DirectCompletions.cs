using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;
using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Protocol;

/// <summary>
/// Serves the two calls a worker makes for every work item it finishes, <c>CompleteOrchestratorTask</c> and
/// <c>CompleteActivityTask</c>, straight from the HTTP/2 request: it reads the one message, hands it to
/// <see cref="SidecarService"/> and writes the answer and the <c>grpc-status</c> trailer, the same bytes on the wire as
/// the gRPC library's handler, without that handler's per-call objects (call context, serialization contexts, the
/// async state machines of its reader, invoker and writer).
/// </summary>
/// <remarks>
/// Only a plain call takes this path: HTTP/2, content type <c>application/grpc</c>, no deadline, no message
/// compression, and a body that is exactly one uncompressed message within the receive limit which parses. Anything
/// else (a deadline, gzip, a malformed or oversized message, extra data) is handed on unconsumed to the library's
/// endpoint, which answers it as it answers every other call. Errors from the service are answered as the library
/// answers them: a trailers-only response whose <c>grpc-status</c> and percent-encoded <c>grpc-message</c> come from
/// the <see cref="RpcException"/>, or <c>Unknown</c> "Exception was thrown by handler." for any other exception.
/// The request's trace span gets the library's <c>grpc.method</c> and <c>grpc.status_code</c> tags.
/// Measured on 2 cores, 64 callers completing work items nobody holds (the cheapest completion): 7.2 µs of
/// scheduler CPU per call against 8.0 µs through the library (means of four alternating runs), and 6-12 % fewer
/// bytes allocated per hello-cities orchestration, of whose 13 calls 11 are completions.
/// </remarks>
public sealed class DirectCompletions
{
    public static readonly string OrchestratorPath = $"/{TaskHubSidecarService.Descriptor.FullName}/CompleteOrchestratorTask";
    public static readonly string ActivityPath = $"/{TaskHubSidecarService.Descriptor.FullName}/CompleteActivityTask";

    readonly SidecarService _service;
    readonly long _maxMessageBytes;
    readonly ILogger _logger;
    long _served;

    public DirectCompletions(SidecarService service, IOptions<GrpcServiceOptions> grpc, Security.SchedulerSecurity security,
        SchedulerOptions options, ILogger<DirectCompletions> logger)
    {
        _service = service;
        // The smaller of the gRPC message limit and the HTTP/2 body limit the dispatch sets (which includes the 5-byte prefix).
        _maxMessageBytes = Math.Min(grpc.Value.MaxReceiveMessageSize ?? long.MaxValue, security.GrpcBodyLimit(options) - 5);
        _logger = logger;
    }

    /// <summary>Calls answered on this path so far (not those handed on to the library).</summary>
    public long Served => Interlocked.Read(ref _served);

    /// <summary>The direct handler for <paramref name="path"/>, or null when calls to it take the library's endpoint.</summary>
    public Func<HttpContext, RequestDelegate, Task>? For(string path)
    {
        if (path == OrchestratorPath)
            return (context, fallback) => Serve(context, fallback, OrchestratorPath, OrchestratorResponse.Parser,
                static (self, request, context) => self._service.CompleteOrchestrator(request, HubName(context), context.RequestAborted));
        if (path == ActivityPath)
            return (context, fallback) => Serve(context, fallback, ActivityPath, ActivityResponse.Parser,
                static (self, request, context) => self._service.CompleteActivity(request, HubName(context)));
        return null;
    }

    static string HubName(HttpContext context) => TaskHubs.TaskHubRegistry.HubName(context.Request.Headers);

    /// <summary>True for a call this path may answer; the body is checked as it is read.</summary>
    public static bool IsPlain(HttpRequest request)
    {
        // The dispatch has already checked that it is a POST to a known gRPC method.
        if (!string.Equals(request.Protocol, "HTTP/2", StringComparison.Ordinal)) return false;
        if (!string.Equals(request.ContentType, "application/grpc", StringComparison.Ordinal)) return false;
        var headers = request.Headers;
        if (headers.ContainsKey("grpc-timeout")) return false;
        return !headers.TryGetValue("grpc-encoding", out var encoding)
            || (encoding.Count == 1 && string.Equals(encoding[0], "identity", StringComparison.Ordinal));
    }

    delegate Task<CompleteTaskResponse> Handler<TRequest>(DirectCompletions self, TRequest request, HttpContext context);

    enum Read { More, Parsed, Fallback }

    Task Serve<TRequest>(HttpContext context, RequestDelegate fallback, string method, MessageParser<TRequest> parser, Handler<TRequest> handler)
        where TRequest : IMessage<TRequest>
    {
        var reader = context.Request.BodyReader;
        var pending = reader.ReadAsync();
        if (!pending.IsCompletedSuccessfully) return ServeAsync(context, fallback, method, parser, handler, pending);

        switch (Examine(reader, pending.Result, parser, out var request))
        {
            case Read.Parsed: return Run(context, method, handler, request!);
            case Read.Fallback: return fallback(context);
            default: return ServeAsync(context, fallback, method, parser, handler, reader.ReadAsync());
        }
    }

    async Task ServeAsync<TRequest>(HttpContext context, RequestDelegate fallback, string method, MessageParser<TRequest> parser,
        Handler<TRequest> handler, ValueTask<ReadResult> pending) where TRequest : IMessage<TRequest>
    {
        var reader = context.Request.BodyReader;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await pending.ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // The body could not be read (the client went away, or Kestrel refused it): answer as a failed call.
                WriteStatus(context, method, Failure(ex, context));
                return;
            }

            switch (Examine(reader, result, parser, out var request))
            {
                case Read.Parsed:
                    await Run(context, method, handler, request!).ConfigureAwait(false);
                    return;
                case Read.Fallback:
                    await fallback(context).ConfigureAwait(false);
                    return;
            }

            pending = reader.ReadAsync();
        }
    }

    /// <summary>
    /// Looks at what has arrived. A whole, valid message followed by the end of the request is parsed and consumed;
    /// anything the library would answer differently is left unconsumed for it (examined, so its next read returns
    /// once more arrives, as this one would have).
    /// </summary>
    Read Examine<TRequest>(PipeReader reader, in ReadResult result, MessageParser<TRequest> parser, out TRequest? request)
        where TRequest : IMessage<TRequest>
    {
        request = default;
        var buffer = result.Buffer;
        var outcome = result.IsCompleted || result.IsCanceled ? Read.Fallback : Read.More;
        if (!result.IsCanceled && buffer.Length >= 5)
        {
            Span<byte> prefix = stackalloc byte[5];
            buffer.Slice(0, 5).CopyTo(prefix);
            long declared = BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
            if (prefix[0] != 0 || declared > _maxMessageBytes || buffer.Length > 5 + declared)
            {
                outcome = Read.Fallback;
            }
            else if (result.IsCompleted && buffer.Length == 5 + declared && TryParse(parser, buffer.Slice(5), out request))
            {
                reader.AdvanceTo(buffer.End);
                return Read.Parsed;
            }
        }

        reader.AdvanceTo(buffer.Start, buffer.End);
        return outcome;
    }

    /// <summary>False for bytes that are not a valid message: the library's endpoint answers those (InvalidArgument, StrictMessageServiceMethodProvider).</summary>
    static bool TryParse<TRequest>(MessageParser<TRequest> parser, ReadOnlySequence<byte> bytes, out TRequest? request)
        where TRequest : IMessage<TRequest>
    {
        try
        {
            request = parser.ParseFrom(bytes);
            return true;
        }
        catch (Exception)
        {
            request = default;
            return false;
        }
    }

    Task Run<TRequest>(HttpContext context, string method, Handler<TRequest> handler, TRequest request)
    {
        Interlocked.Increment(ref _served);
        Task<CompleteTaskResponse> call;
        try
        {
            call = handler(this, request, context);
        }
        catch (Exception ex)
        {
            WriteStatus(context, method, Failure(ex, context));
            return Task.CompletedTask;
        }

        if (call.IsCompletedSuccessfully)
        {
            WriteMessage(context, method, call.Result);
            return Task.CompletedTask;
        }

        return AwaitCall(context, method, call);
    }

    async Task AwaitCall(HttpContext context, string method, Task<CompleteTaskResponse> call)
    {
        CompleteTaskResponse response;
        try
        {
            response = await call.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            WriteStatus(context, method, Failure(ex, context));
            return;
        }

        WriteMessage(context, method, response);
    }

    Status Failure(Exception ex, HttpContext context)
    {
        if (ex is RpcException rpc) return rpc.Status;
        if (ex is Domain.TaskHubException outcome) return GrpcOutcomes.ToStatus(outcome);
        // A call its client abandoned is not an error of the scheduler's; the answer reaches nobody.
        if (ex is not (OperationCanceledException or IOException) || !context.RequestAborted.IsCancellationRequested)
            Logs.DirectCallFailed(_logger, context.Request.Path.Value ?? "", ex);
        return new Status(StatusCode.Unknown, "Exception was thrown by handler.");
    }

    const string GrpcContentType = "application/grpc";
    const string StatusOk = "0";

    /// <summary>The answer: one length-prefixed message, then the trailer <c>grpc-status: 0</c>. Kestrel sends both when the call returns.</summary>
    static void WriteMessage(HttpContext context, string method, IMessage message)
    {
        var response = context.Response;
        response.ContentType = GrpcContentType;
        int size = message.CalculateSize();
        var writer = response.BodyWriter;
        var span = writer.GetSpan(5 + size);
        span[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)size);
        message.WriteTo(span.Slice(5, size));
        writer.Advance(5 + size);
        response.AppendTrailer("grpc-status", StatusOk);
        Tag(context, method, StatusOk);
    }

    /// <summary>A trailers-only answer: the status goes in the response headers, with no message.</summary>
    static void WriteStatus(HttpContext context, string method, Status status)
    {
        var response = context.Response;
        string code = ((int)status.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (response.HasStarted)
        {
            response.AppendTrailer("grpc-status", code);
            if (!string.IsNullOrEmpty(status.Detail)) response.AppendTrailer("grpc-message", PercentEncode(status.Detail));
        }
        else
        {
            response.ContentType = GrpcContentType;
            response.Headers["grpc-status"] = code;
            if (!string.IsNullOrEmpty(status.Detail)) response.Headers["grpc-message"] = PercentEncode(status.Detail);
        }

        Tag(context, method, code);
    }

    static void Tag(HttpContext context, string method, string code)
    {
        if (context.Features.Get<IHttpActivityFeature>()?.Activity is not { IsAllDataRequested: true } activity) return;
        activity.AddTag("grpc.method", method);
        activity.AddTag("grpc.status_code", code);
    }

    /// <summary>
    /// A status message as <c>grpc-message</c> carries it: UTF-8, with every byte outside printable ASCII, and '%',
    /// written as %XX (the gRPC HTTP/2 protocol, "Responses").
    /// </summary>
    public static string PercentEncode(string message)
    {
        bool plain = true;
        foreach (char c in message)
        {
            if (c < ' ' || c > '~' || c == '%')
            {
                plain = false;
                break;
            }
        }

        if (plain) return message;
        var bytes = Encoding.UTF8.GetBytes(message);
        var text = new StringBuilder(bytes.Length * 3);
        foreach (byte b in bytes)
        {
            if (b < ' ' || b > '~' || b == '%') text.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            else text.Append((char)b);
        }

        return text.ToString();
    }
}
