using System.Text;
using Google.Protobuf;
using Google.Protobuf.Collections;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>
/// Protobuf wire-format primitives for the messages the scheduler writes field by field (history events, see
/// <see cref="EventWire"/>, and the work items of <c>Protocol.Wire</c>, which carry those events) instead of building
/// their message objects. They live with the history encoding, the lower of the two layers that use them.
/// </summary>
static class ProtoWire
{
    public const int VarintType = 0;
    public const int LengthDelimited = 2;

    public static byte Tag(int field, int wireType) => (byte)((field << 3) | wireType);

    /// <summary>Size of a field's tag: one byte for field numbers below 16.</summary>
    public static int TagSize(int field) => VarintSize((uint)field << 3);

    public static int VarintSize(ulong value) => CodedOutputStream.ComputeRawVarint64Size(value);

    /// <summary>Size of a length-delimited field whose content is <paramref name="length"/> bytes.</summary>
    public static int FieldSize(int length) => 1 + VarintSize((uint)length) + length;

    /// <summary>Size of length-delimited field <paramref name="field"/> whose content is <paramref name="length"/> bytes.</summary>
    public static int FieldSize(int field, int length) => TagSize(field) + VarintSize((uint)length) + length;

    /// <summary>Size of a string field's content in UTF-8.</summary>
    public static int Utf8Size(string value) => Encoding.UTF8.GetByteCount(value);

    /// <summary>Size of a string field, which protobuf leaves out when the string is empty.</summary>
    public static int StringSize(string value) => value.Length == 0 ? 0 : FieldSize(Utf8Size(value));

    /// <summary>Size of a <c>google.protobuf.StringValue</c> field, present whenever the value is not null.</summary>
    public static int StringValueSize(string? value) => value is null ? 0 : FieldSize(StringSize(value));

    /// <summary>Size of an <c>int32</c> field (negative values take ten bytes, as protobuf encodes them).</summary>
    public static int Int32Size(int value) => value == 0 ? 0 : 1 + VarintSize((ulong)(long)value);

    /// <summary>Size of an <c>int64</c> field.</summary>
    public static int Int64Size(long value) => value == 0 ? 0 : 1 + VarintSize((ulong)value);

    public static int MessageSize(IMessage? message) => message is null ? 0 : FieldSize(message.CalculateSize());

    /// <summary>Size of <c>map&lt;string, string&gt;</c> field <paramref name="field"/>: one entry (key 1, value 2) per pair.</summary>
    public static int MapSize(int field, MapField<string, string> map)
    {
        // Enumerating a map allocates, even an empty one.
        if (map.Count == 0) return 0;
        int size = 0;
        foreach (var (key, value) in map) size += FieldSize(field, EntrySize(key, value));
        return size;
    }

    static int EntrySize(string key, string value) => StringSize(key) + StringSize(value);

    /// <summary>Writes protobuf fields into a span sized for them in advance.</summary>
    public ref struct Writer(Span<byte> span)
    {
        readonly Span<byte> _span = span;
        int _position;

        public readonly int Position => _position;

        public void Varint(ulong value)
        {
            while (value >= 0x80)
            {
                _span[_position++] = (byte)(value | 0x80);
                value >>= 7;
            }

            _span[_position++] = (byte)value;
        }

        /// <summary>The tag and length of a length-delimited field whose content follows.</summary>
        public void FieldHeader(int field, int length)
        {
            if (field < 16) _span[_position++] = Tag(field, LengthDelimited);
            else Varint(((uint)field << 3) | LengthDelimited);
            Varint((uint)length);
        }

        public void String(int field, string value)
        {
            if (value.Length == 0) return;
            int length = Utf8Size(value);
            FieldHeader(field, length);
            _position += Encoding.UTF8.GetBytes(value, _span[_position..]);
        }

        public void StringValue(int field, string? value)
        {
            if (value is null) return;
            FieldHeader(field, StringSize(value));
            String(1, value);
        }

        public void Int32(int field, int value)
        {
            if (value == 0) return;
            _span[_position++] = Tag(field, VarintType);
            Varint((ulong)(long)value);
        }

        public void Int64(int field, long value)
        {
            if (value == 0) return;
            _span[_position++] = Tag(field, VarintType);
            Varint((ulong)value);
        }

        public void Bool(int field, bool value)
        {
            if (!value) return;
            _span[_position++] = Tag(field, VarintType);
            _span[_position++] = 1;
        }

        public void Message(int field, IMessage? message)
        {
            if (message is null) return;
            int length = message.CalculateSize();
            FieldHeader(field, length);
            message.WriteTo(_span.Slice(_position, length));
            _position += length;
        }

        public void Map(int field, MapField<string, string> map)
        {
            if (map.Count == 0) return;
            foreach (var (key, value) in map)
            {
                FieldHeader(field, EntrySize(key, value));
                String(1, key);
                String(2, value);
            }
        }

        public void Raw(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_span[_position..]);
            _position += bytes.Length;
        }
    }

    /// <summary>Reads the length prefix of the field at <paramref name="position"/> (past its one-byte tag); moves past both.</summary>
    public static int ReadFieldLength(ReadOnlySpan<byte> bytes, ref int position)
    {
        position++;
        uint value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = bytes[position++];
            value |= (uint)(b & 0x7f) << shift;
            if (b < 0x80) return (int)value;
        }
    }
}
