using Google.Protobuf;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>
/// An instance's committed history in wire form: each event encoded once, as one <c>pastEvents</c> field of an
/// <see cref="OrchestratorRequest"/> (tag, length, event), appended as the history grows. It is what the instance
/// keeps in memory: every orchestrator work item carries the whole history, so a work item copies these bytes instead
/// of encoding the history's messages again on every episode, the store writes the same event bytes, and the garbage
/// collector sees one array per instance instead of several objects per event.
/// </summary>
/// <remarks>
/// Bytes once written never change: a reader may keep a slice while later events are appended (a full buffer is
/// replaced by a larger copy, never written over), so slices are handed out without copying.
/// </remarks>
public sealed class EncodedHistory
{
    const byte PastEventTag = (OrchestratorRequest.PastEventsFieldNumber << 3) | (byte)WireFormat.WireType.LengthDelimited;

    byte[] _buffer = [];
    int _length;

    /// <summary>Number of events encoded.</summary>
    public int Count { get; private set; }

    /// <summary>The first <c>ExecutionStarted</c> event appended (the execution's start), if it is known.</summary>
    public ExecutionStartedEvent? Start { get; private set; }

    /// <summary>Every encoded event as <c>pastEvents</c> fields, ready to follow the other fields of a request.</summary>
    public ReadOnlyMemory<byte> PastEvents => new(_buffer, 0, _length);

    public void Append(HistoryEvent e)
    {
        int size = e.CalculateSize();
        int header = 1 + CodedOutputStream.ComputeLengthSize(size);
        Reserve(header + size);
        var span = _buffer.AsSpan(_length, header + size);
        span[0] = PastEventTag;
        WriteVarint(span[1..], (uint)size);
        e.WriteTo(span[header..]);
        _length += header + size;
        Count++;
        if (Start is null && e.EventTypeCase == HistoryEvent.EventTypeOneofCase.ExecutionStarted) Start = e.ExecutionStarted;
    }

    /// <summary>The bytes of each event from <paramref name="index"/> on, each a serialized <see cref="HistoryEvent"/>.</summary>
    public IEnumerable<ReadOnlyMemory<byte>> EventsFrom(int index)
    {
        var buffer = _buffer;
        int length = _length, position = 0;
        for (int i = 0; position < length; i++)
        {
            position++; // the tag
            int size = (int)ReadVarint(buffer, ref position);
            if (i >= index) yield return new ReadOnlyMemory<byte>(buffer, position, size);
            position += size;
        }
    }

    /// <summary>The events as messages (a new list each time).</summary>
    public List<HistoryEvent> Decode()
    {
        var events = new List<HistoryEvent>(Count);
        if (_length > 0) events.AddRange(OrchestratorRequest.Parser.ParseFrom(PastEvents.Span).PastEvents);
        if (Start is null)
        {
            foreach (var e in events)
            {
                if (e.EventTypeCase != HistoryEvent.EventTypeOneofCase.ExecutionStarted) continue;
                Start = e.ExecutionStarted;
                break;
            }
        }

        return events;
    }

    /// <summary>For a history that will not grow: drops spare capacity and the start event (found again on decoding).</summary>
    public void Compact()
    {
        if (_buffer.Length != _length) _buffer = _buffer.AsSpan(0, _length).ToArray();
        Start = null;
    }

    void Reserve(int more)
    {
        if (_buffer.Length - _length >= more) return;
        var larger = new byte[Math.Max(Math.Max(1024, _buffer.Length * 2), _length + more)];
        _buffer.AsSpan(0, _length).CopyTo(larger);
        _buffer = larger;
    }

    /// <summary>Writes <paramref name="value"/> as a protobuf varint; returns the number of bytes written.</summary>
    public static int WriteVarint(Span<byte> destination, uint value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }

    static uint ReadVarint(byte[] buffer, ref int position)
    {
        uint value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = buffer[position++];
            value |= (uint)(b & 0x7f) << shift;
            if (b < 0x80) return value;
        }
    }
}
