using System.Buffers;
using DurableTask.Scheduler.Orchestration;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Grpc.Core;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Protocol.Wire;

/// <summary>
/// A work item on its way to a worker over <c>GetWorkItems</c>. On the wire it is exactly a <see cref="WorkItem"/>.
/// Orchestrator and activity work items are written field by field from bytes encoded once: an orchestrator request
/// copies its past events from the instance's <see cref="EncodedHistory"/> and its new events from the block the
/// dispatch encoded (which the completion then appends to the history as they are), and an activity request is
/// encoded once when the activity is scheduled. Other work items are messages serialized as usual.
/// </summary>
public sealed class OutboundWorkItem
{
    const int OrchestratorRequestField = WorkItem.OrchestratorRequestFieldNumber;
    const int ActivityRequestField = WorkItem.ActivityRequestFieldNumber;
    const int CompletionTokenField = WorkItem.CompletionTokenFieldNumber;

    /// <summary>An orchestrator request's own fields (all but its events).</summary>
    readonly struct Header
    {
        public required string InstanceId { get; init; }
        public required string ExecutionId { get; init; }
        public byte[]? EntityParameters { get; init; }
        public bool RequiresHistoryStreaming { get; init; }
        public OrchestrationTraceContext? TraceContext { get; init; }
    }

    readonly WorkItem? _item;
    readonly Header _header;
    readonly ReadOnlyMemory<byte> _pastEvents;
    readonly ReadOnlyMemory<byte> _newEvents;
    readonly ReadOnlyMemory<byte> _activityRequest;
    readonly string _completionToken = "";

    /// <summary>Any work item but an orchestrator or activity request.</summary>
    public OutboundWorkItem(WorkItem item) => _item = item;

    OutboundWorkItem(Header header, ReadOnlyMemory<byte> pastEvents, ReadOnlyMemory<byte> newEvents, string completionToken)
    {
        _header = header;
        _pastEvents = pastEvents;
        _newEvents = newEvents;
        _completionToken = completionToken;
    }

    OutboundWorkItem(ReadOnlyMemory<byte> activityRequest, string completionToken)
    {
        _activityRequest = activityRequest;
        _completionToken = completionToken;
    }

    /// <summary>
    /// An orchestrator request. <paramref name="pastEvents"/> and <paramref name="newEvents"/> are encoded
    /// <c>pastEvents</c> and <c>newEvents</c> fields (tag, length, event); <paramref name="entityParameters"/> is the
    /// encoded content of <c>entityParameters</c>, if the request has the field.
    /// </summary>
    public static OutboundWorkItem Orchestrator(
        string instanceId, string executionId, byte[]? entityParameters, bool requiresHistoryStreaming,
        OrchestrationTraceContext? traceContext, ReadOnlyMemory<byte> pastEvents, ReadOnlyMemory<byte> newEvents, string completionToken) =>
        new(new Header
        {
            InstanceId = instanceId,
            ExecutionId = executionId,
            EntityParameters = entityParameters,
            RequiresHistoryStreaming = requiresHistoryStreaming,
            TraceContext = traceContext,
        }, pastEvents, newEvents, completionToken);

    /// <summary>An activity request, <paramref name="request"/> being an encoded <see cref="ActivityRequest"/>.</summary>
    public static OutboundWorkItem Activity(ReadOnlyMemory<byte> request, string completionToken) => new(request, completionToken);

    public static readonly Marshaller<OutboundWorkItem> Marshaller = new(Serialize, Deserialize);

    /// <summary>The message as bytes on the wire.</summary>
    public byte[] ToByteArray()
    {
        var buffer = new ArrayBufferWriter<byte>();
        Write(buffer, new Sizes(this));
        return buffer.WrittenSpan.ToArray();
    }

    static void Serialize(OutboundWorkItem value, SerializationContext context)
    {
        var sizes = new Sizes(value);
        context.SetPayloadLength(value.CalculateSize(sizes));
        value.Write(context.GetBufferWriter(), sizes);
        context.Complete();
    }

    static OutboundWorkItem Deserialize(DeserializationContext context) =>
        new(WorkItem.Parser.ParseFrom(context.PayloadAsReadOnlySequence()));

    bool IsOrchestrator => _header.InstanceId is not null;

    /// <summary>Size of the orchestrator request's fields before its past and new events.</summary>
    int HeaderSize =>
        ProtoWire.StringSize(_header.InstanceId)
        + ProtoWire.StringValueSize(_header.ExecutionId)
        + (_header.EntityParameters is { } entity ? ProtoWire.FieldSize(entity.Length) : 0)
        + (_header.RequiresHistoryStreaming ? 2 : 0)
        + ProtoWire.MessageSize(_header.TraceContext);

    /// <summary>The sizes both the length and the writing need, computed once per serialization.</summary>
    readonly struct Sizes(OutboundWorkItem item)
    {
        public readonly int Header = item._item is null && item.IsOrchestrator ? item.HeaderSize : 0;
        public readonly int Token = item._item is null ? ProtoWire.StringSize(item._completionToken) : 0;
    }

    int CalculateSize(Sizes sizes)
    {
        if (_item is not null) return _item.CalculateSize();
        if (IsOrchestrator) return ProtoWire.FieldSize(sizes.Header + _pastEvents.Length + _newEvents.Length) + sizes.Token;
        return ProtoWire.FieldSize(_activityRequest.Length) + sizes.Token;
    }

    /// <summary>
    /// Writes the request field (for an orchestrator request: its own fields, then the encoded past and new events,
    /// which protobuf parsers accept in any field order and append in the order they come), then the token.
    /// </summary>
    void Write(IBufferWriter<byte> output, Sizes sizes)
    {
        if (_item is not null)
        {
            _item.WriteTo(output);
            return;
        }

        if (IsOrchestrator)
        {
            int header = sizes.Header;
            int request = header + _pastEvents.Length + _newEvents.Length;
            int size = 1 + ProtoWire.VarintSize((uint)request) + header;
            var writer = new ProtoWire.Writer(output.GetSpan(size));
            writer.FieldHeader(OrchestratorRequestField, request);
            writer.String(OrchestratorRequest.InstanceIdFieldNumber, _header.InstanceId);
            writer.StringValue(OrchestratorRequest.ExecutionIdFieldNumber, _header.ExecutionId);
            if (_header.EntityParameters is { } entity)
            {
                writer.FieldHeader(OrchestratorRequest.EntityParametersFieldNumber, entity.Length);
                writer.Raw(entity);
            }

            writer.Bool(OrchestratorRequest.RequiresHistoryStreamingFieldNumber, _header.RequiresHistoryStreaming);
            writer.Message(OrchestratorRequest.OrchestrationTraceContextFieldNumber, _header.TraceContext);
            output.Advance(writer.Position);
            output.Write(_pastEvents.Span);
            output.Write(_newEvents.Span);
        }
        else
        {
            var writer = new ProtoWire.Writer(output.GetSpan(1 + ProtoWire.VarintSize((uint)_activityRequest.Length)));
            writer.FieldHeader(ActivityRequestField, _activityRequest.Length);
            output.Advance(writer.Position);
            output.Write(_activityRequest.Span);
        }

        var token = new ProtoWire.Writer(output.GetSpan(sizes.Token));
        token.String(CompletionTokenField, _completionToken);
        output.Advance(token.Position);
    }

    /// <summary>
    /// Encodes the <c>newEvents</c> of an orchestrator work item, once: <paramref name="started"/>, then messages from
    /// the front of the inbox, at most <paramref name="maxEvents"/> and, after the first, <paramref name="maxBytes"/>
    /// bytes of them. Returns the encoded fields and the number of inbox messages they include.
    /// </summary>
    public static (ReadOnlyMemory<byte> Fields, int Count) EncodeNewEvents(DateTime startedAt, List<HistoryEvent> inbox, int maxEvents, long maxBytes)
    {
        // Two passes: the first picks the events and sizes them, so the buffer is allocated once at its exact size.
        int limit = Math.Min(inbox.Count, maxEvents);
        const int StackSizes = 32;
        int[]? rented = limit > StackSizes ? ArrayPool<int>.Shared.Rent(limit) : null;
        Span<int> sizes = rented is not null ? rented : stackalloc int[StackSizes];
        try
        {
            int startedSize = EventWire.OrchestratorStartedSize(startedAt);
            int total = ProtoWire.FieldSize(startedSize);
            int count = 0;
            long bytes = 0;
            while (count < limit)
            {
                var e = inbox[count];
                int size = e.CalculateSize();
                // A rewind must reach the worker as exactly [OrchestratorStarted, ExecutionRewound].
                if (e.EventTypeCase == HistoryEvent.EventTypeOneofCase.ExecutionRewound)
                {
                    if (count == 0)
                    {
                        sizes[0] = size;
                        total += ProtoWire.FieldSize(size);
                        count = 1;
                    }

                    break;
                }

                bytes += size;
                if (count > 0 && bytes > maxBytes) break;
                sizes[count++] = size;
                total += ProtoWire.FieldSize(size);
            }

            var buffer = new byte[total];
            var header = new ProtoWire.Writer(buffer);
            header.FieldHeader(OrchestratorRequest.NewEventsFieldNumber, startedSize);
            EventWire.WriteOrchestratorStarted(buffer.AsSpan(header.Position, startedSize), startedAt);
            int length = header.Position + startedSize;
            for (int i = 0; i < count; i++) length = Add(buffer, length, inbox[i], sizes[i]);
            return (buffer, count);
        }
        finally
        {
            if (rented is not null) ArrayPool<int>.Shared.Return(rented);
        }

        static int Add(byte[] buffer, int length, HistoryEvent e, int size)
        {
            int field = ProtoWire.FieldSize(size);
            var writer = new ProtoWire.Writer(buffer.AsSpan(length, field));
            writer.FieldHeader(OrchestratorRequest.NewEventsFieldNumber, size);
            e.WriteTo(buffer.AsSpan(length + writer.Position, size));
            return length + field;
        }
    }

    /// <summary>
    /// Encodes the <see cref="ActivityRequest"/> for a task scheduled with these parts (those of its <c>TaskScheduled</c>
    /// event), as <see cref="ActivityRequest.ToByteArray"/> would, without building the message.
    /// </summary>
    public static byte[] EncodeActivityRequest(string name, string? version, string? input, TraceContext? traceContext,
        MapField<string, string> tags, string instanceId, string executionId, int taskId)
    {
        int instance = ProtoWire.StringSize(instanceId) + ProtoWire.StringValueSize(executionId);
        int size = ProtoWire.StringSize(name)
            + ProtoWire.StringValueSize(version)
            + ProtoWire.StringValueSize(input)
            + ProtoWire.FieldSize(instance)
            + ProtoWire.Int32Size(taskId)
            + ProtoWire.MessageSize(traceContext)
            + ProtoWire.MapSize(ActivityRequest.TagsFieldNumber, tags);

        var bytes = new byte[size];
        var writer = new ProtoWire.Writer(bytes);
        writer.String(ActivityRequest.NameFieldNumber, name);
        writer.StringValue(ActivityRequest.VersionFieldNumber, version);
        writer.StringValue(ActivityRequest.InputFieldNumber, input);
        writer.FieldHeader(ActivityRequest.OrchestrationInstanceFieldNumber, instance);
        writer.String(OrchestrationInstance.InstanceIdFieldNumber, instanceId);
        writer.StringValue(OrchestrationInstance.ExecutionIdFieldNumber, executionId);
        writer.Int32(ActivityRequest.TaskIdFieldNumber, taskId);
        writer.Message(ActivityRequest.ParentTraceContextFieldNumber, traceContext);
        writer.Map(ActivityRequest.TagsFieldNumber, tags);

        if (writer.Position != size) throw new InvalidOperationException($"activity request encoded as {writer.Position} bytes, sized {size}");
        return bytes;
    }
}
