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
/// A history that will not grow (a finished instance's) is kept packed by <see cref="Compact"/>
/// (<see cref="HistoryPacking"/>): the encoding repeats itself (event ids, timestamps, names), so it about halves.
/// Reading it unpacks a copy; appending to it unpacks it for good.
/// </remarks>
public sealed class EncodedHistory
{
    const byte PastEventTag = (OrchestratorRequest.PastEventsFieldNumber << 3) | (byte)WireFormat.WireType.LengthDelimited;

    /// <summary>Histories shorter than this stay as they are when compacted: too little to win.</summary>
    const int MinPackedLength = 256;

    byte[] _buffer = [];
    int _length;

    /// <summary>The first <see cref="_length"/> bytes packed, while the history is packed (then <see cref="_buffer"/> is empty).</summary>
    byte[]? _packed;

    /// <summary>Number of events encoded.</summary>
    public int Count { get; private set; }

    /// <summary>The first <c>ExecutionStarted</c> event appended (the execution's start), if it is known.</summary>
    public ExecutionStartedEvent? Start { get; private set; }

    /// <summary>Every encoded event as <c>pastEvents</c> fields, ready to follow the other fields of a request.</summary>
    public ReadOnlyMemory<byte> PastEvents => new(Bytes, 0, _length);

    /// <summary>True while the bytes are kept packed.</summary>
    public bool IsPacked => _packed is not null;

    /// <summary>The bytes this history keeps in memory (packed or not, without spare capacity).</summary>
    public int RetainedBytes => _packed?.Length ?? _length;

    /// <summary>The encoded events: the buffer, or an unpacked copy of a packed history.</summary>
    byte[] Bytes => _packed is null ? _buffer : Inflate(_packed, _length);

    public void Append(HistoryEvent e)
    {
        int size = e.CalculateSize();
        var span = Extend(size);
        e.WriteTo(span);
        Appended(e);
    }

    /// <summary>Appends <paramref name="e"/>, whose encoding (<see cref="MessageExtensions.ToByteArray"/>) is <paramref name="encoded"/>.</summary>
    public void Append(HistoryEvent e, ReadOnlySpan<byte> encoded)
    {
        encoded.CopyTo(Extend(encoded.Length));
        Appended(e);
    }

    /// <summary>
    /// Appends an event the caller writes into the returned span of <paramref name="size"/> bytes right away (see
    /// <see cref="EventWire"/>); never an <c>ExecutionStarted</c>, which <see cref="Start"/> is taken from.
    /// </summary>
    public Span<byte> AppendEncoded(int size)
    {
        var span = Extend(size);
        Count++;
        return span;
    }

    /// <summary>Writes the tag and length of an event of <paramref name="size"/> bytes; returns the space for the event.</summary>
    Span<byte> Extend(int size)
    {
        if (_packed is not null)
        {
            _buffer = Inflate(_packed, _length);
            _packed = null;
        }

        int header = 1 + CodedOutputStream.ComputeLengthSize(size);
        Reserve(header + size);
        var span = _buffer.AsSpan(_length, header + size);
        span[0] = PastEventTag;
        WriteVarint(span[1..], (uint)size);
        _length += header + size;
        return span[header..];
    }

    void Appended(HistoryEvent e)
    {
        Count++;
        if (Start is null && e.EventTypeCase == HistoryEvent.EventTypeOneofCase.ExecutionStarted) Start = e.ExecutionStarted;
    }

    /// <summary>The bytes of each event from <paramref name="index"/> on, each a serialized <see cref="HistoryEvent"/>.</summary>
    public IEnumerable<ReadOnlyMemory<byte>> EventsFrom(int index)
    {
        if (index >= Count) yield break;
        var buffer = Bytes;
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

    /// <summary>
    /// For a history that will not grow: keeps it packed (or, when that does not pay, without spare capacity) and
    /// drops the start event (found again on decoding).
    /// </summary>
    public void Compact()
    {
        Start = null;
        if (_packed is not null) return;
        if (_length >= MinPackedLength)
        {
            var packed = HistoryPacking.Pack(_buffer.AsSpan(0, _length), maxPacked: _length - _length / 8 - 1);
            if (packed is not null)
            {
                _packed = packed;
                _buffer = [];
                return;
            }
        }

        if (_buffer.Length != _length) _buffer = _buffer.AsSpan(0, _length).ToArray();
    }

    static byte[] Inflate(byte[] packed, int length) => HistoryPacking.Unpack(packed, length);

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
