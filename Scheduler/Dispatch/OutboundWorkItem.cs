using System.Buffers;
using DurableTask.Scheduler.Orchestration;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Dispatch;

/// <summary>
/// A work item on its way to a worker over <c>GetWorkItems</c>. On the wire it is exactly a <see cref="WorkItem"/>;
/// an orchestrator work item carries its past events already encoded (<see cref="EncodedHistory"/>), and they are
/// copied into the message instead of being serialized from the history's messages again.
/// </summary>
public sealed class OutboundWorkItem
{
    const byte OrchestratorRequestTag = (WorkItem.OrchestratorRequestFieldNumber << 3) | (byte)WireFormat.WireType.LengthDelimited;

    /// <summary>Any work item but an orchestrator request.</summary>
    public OutboundWorkItem(WorkItem item) => Item = item;

    /// <summary>An orchestrator request whose <c>pastEvents</c> are <paramref name="pastEvents"/> (encoded fields).</summary>
    public OutboundWorkItem(OrchestratorRequest request, ReadOnlyMemory<byte> pastEvents, string completionToken)
    {
        if (request.PastEvents.Count > 0) throw new ArgumentException("the past events go in encoded form", nameof(request));
        Item = new WorkItem { CompletionToken = completionToken };
        Orchestration = request;
        PastEvents = pastEvents;
    }

    /// <summary>The work item; for an orchestrator request, everything but the request.</summary>
    public WorkItem Item { get; }

    public OrchestratorRequest? Orchestration { get; }

    public ReadOnlyMemory<byte> PastEvents { get; }

    /// <summary>The message as bytes on the wire.</summary>
    public byte[] ToByteArray()
    {
        var buffer = new ArrayBufferWriter<byte>();
        Write(buffer, RequestSize);
        return buffer.WrittenSpan.ToArray();
    }

    public static readonly Marshaller<OutboundWorkItem> Marshaller = new(Serialize, Deserialize);

    static void Serialize(OutboundWorkItem value, SerializationContext context)
    {
        int request = value.RequestSize;
        context.SetPayloadLength(value.CalculateSize(request));
        value.Write(context.GetBufferWriter(), request);
        context.Complete();
    }

    static OutboundWorkItem Deserialize(DeserializationContext context) =>
        new(WorkItem.Parser.ParseFrom(context.PayloadAsReadOnlySequence()));

    /// <summary>Size of the orchestrator request's field content (0 for other work items).</summary>
    int RequestSize => Orchestration is null ? 0 : Orchestration.CalculateSize() + PastEvents.Length;

    int CalculateSize(int request) =>
        Orchestration is null ? Item.CalculateSize() : 1 + CodedOutputStream.ComputeLengthSize(request) + request + Item.CalculateSize();

    /// <summary>
    /// Writes field 1 (the request: its own fields, then the encoded past events, which protobuf parsers accept in
    /// any field order and append in the order they come), then the rest of the work item.
    /// </summary>
    void Write(IBufferWriter<byte> output, int request)
    {
        if (Orchestration is null)
        {
            Item.WriteTo(output);
            return;
        }

        var header = output.GetSpan(6);
        header[0] = OrchestratorRequestTag;
        output.Advance(1 + EncodedHistory.WriteVarint(header[1..], (uint)request));
        Orchestration.WriteTo(output);
        output.Write(PastEvents.Span);
        Item.WriteTo(output);
    }
}
