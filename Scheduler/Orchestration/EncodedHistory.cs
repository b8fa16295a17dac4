using Google.Protobuf;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>
/// An instance's committed history in wire form: each event encoded once, as one <c>pastEvents</c> field of an
/// <see cref="OrchestratorRequest"/> (tag, length, event), appended as the history grows. Every orchestrator work item
/// carries the whole history, so a work item copies these bytes instead of walking and encoding the history's message
/// tree again on every episode; the store writes the same event bytes.
/// </summary>
/// <remarks>
/// Bytes once written never change: a reader may keep a slice while later events are appended (a full buffer is
/// replaced by a larger copy, never written over), so slices are handed out without copying. A history list replaced
/// as a whole (continue-as-new, rewind, unpacking) starts a new buffer.
/// </remarks>
public sealed class EncodedHistory
{
    const byte PastEventTag = (OrchestratorRequest.PastEventsFieldNumber << 3) | (byte)WireFormat.WireType.LengthDelimited;

    List<HistoryEvent>? _source;
    byte[] _buffer = [];
    int _length;

    /// <summary>Start and end of each event's own bytes (after its tag and length) in <see cref="_buffer"/>.</summary>
    int[] _bounds = [];
    int _count;

    /// <summary>Encodes the events of <paramref name="history"/> not encoded yet; starts over for another list.</summary>
    public void Sync(List<HistoryEvent> history)
    {
        if (!ReferenceEquals(history, _source) || history.Count < _count)
        {
            _source = history;
            _buffer = [];
            _bounds = [];
            _length = 0;
            _count = 0;
        }

        while (_count < history.Count) Add(history[_count]);
    }

    /// <summary>Number of events encoded.</summary>
    public int Count => _count;

    /// <summary>Every encoded event as <c>pastEvents</c> fields, ready to follow the other fields of a request.</summary>
    public ReadOnlyMemory<byte> PastEvents => new(_buffer, 0, _length);

    /// <summary>The bytes of event <paramref name="index"/> alone (a serialized <see cref="HistoryEvent"/>).</summary>
    public ReadOnlyMemory<byte> Event(int index)
    {
        if ((uint)index >= (uint)_count) throw new ArgumentOutOfRangeException(nameof(index));
        int start = _bounds[2 * index];
        return new ReadOnlyMemory<byte>(_buffer, start, _bounds[2 * index + 1] - start);
    }

    void Add(HistoryEvent e)
    {
        int size = e.CalculateSize();
        int header = 1 + CodedOutputStream.ComputeLengthSize(size);
        Reserve(header + size);
        var span = _buffer.AsSpan(_length, header + size);
        span[0] = PastEventTag;
        WriteVarint(span[1..], (uint)size);
        e.WriteTo(span[header..]);

        if (_bounds.Length < 2 * (_count + 1)) Array.Resize(ref _bounds, Math.Max(16, _bounds.Length * 2));
        _bounds[2 * _count] = _length + header;
        _bounds[2 * _count + 1] = _length + header + size;
        _length += header + size;
        _count++;
    }

    void Reserve(int more)
    {
        if (_buffer.Length - _length >= more) return;
        var larger = new byte[Math.Max(Math.Max(256, _buffer.Length * 2), _length + more)];
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
}
