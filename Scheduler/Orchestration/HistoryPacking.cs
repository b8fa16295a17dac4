using System.Buffers.Binary;
using System.IO.Compression;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>
/// Packs the encoded history of a finished instance (it will not grow), and unpacks it for reading. A packed history
/// starts with a format byte:
/// <list type="bullet">
/// <item><see cref="Lz"/>: a byte-oriented LZ77 coding, for histories up to <see cref="MaxLzLength"/>. A sequence is
/// (varint literal count, the literals, varint match distance, varint match length - <see cref="MinMatch"/>); the last
/// sequence has literals only, and the unpacked length (kept by the caller) says where it ends.</item>
/// <item><see cref="Deflate"/>: raw deflate, for longer histories.</item>
/// </list>
/// </summary>
/// <remarks>
/// Most finished histories are short (a 5-activity orchestration's is about 1 KB). Deflating one costs zlib's
/// per-stream set-up, a few hundred KB of tables allocated and cleared, more than the compression itself: about 6 %
/// of the scheduler's CPU in the hello-cities benchmark. The LZ coding needs a hash table of at most 16 KB on the
/// stack and no allocation but its output; on a 1 KB history it took 12 µs against 20 µs alone (1.8 % of the
/// scheduler's CPU instead of 6 % in the benchmark), for about 17 % more bytes (the event ids, names and timestamps
/// that repeat are what both find). A long history pays the set-up once for many bytes, and
/// deflate's larger window and Huffman coding then matter, so it is deflated.
/// </remarks>
public static class HistoryPacking
{
    public const byte Lz = 1;
    public const byte Deflate = 2;

    /// <summary>Longest history packed with the LZ coding (the hash table covers it well; beyond, deflate wins).</summary>
    public const int MaxLzLength = 16 * 1024;

    const int MinMatch = 4;

    /// <summary>Most hash bits: a 4,096-entry table, enough for <see cref="MaxLzLength"/>; shorter inputs use fewer.</summary>
    const int MaxHashBits = 12;

    /// <summary>
    /// Packs <paramref name="bytes"/>; null when the result would not be at most <paramref name="maxPacked"/> bytes
    /// (then keeping the bytes as they are is better).
    /// </summary>
    public static byte[]? Pack(ReadOnlySpan<byte> bytes, int maxPacked)
    {
        if (maxPacked <= 1) return null;
        if (bytes.Length > MaxLzLength)
        {
            var output = new MemoryStream(bytes.Length / 2 + 64);
            output.WriteByte(Deflate);
            using (var deflate = new DeflateStream(output, CompressionLevel.Fastest, leaveOpen: true)) deflate.Write(bytes);
            return output.Length <= maxPacked ? output.ToArray() : null;
        }

        // Never written past: each step checks room for its literals and three varints.
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(maxPacked + 16);
        try
        {
            int length = PackLz(bytes, buffer.AsSpan(0, maxPacked + 16), maxPacked);
            return length < 0 ? null : buffer.AsSpan(0, length).ToArray();
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The <paramref name="length"/> bytes <paramref name="packed"/> holds.</summary>
    /// <exception cref="InvalidDataException">The packed bytes are not a packing of that many bytes.</exception>
    public static byte[] Unpack(byte[] packed, int length)
    {
        var bytes = new byte[length];
        if (packed.Length == 0) throw new InvalidDataException("Empty packed history.");
        switch (packed[0])
        {
            case Lz:
                UnpackLz(packed.AsSpan(1), bytes);
                break;
            case Deflate:
                try
                {
                    using var inflate = new DeflateStream(new MemoryStream(packed, 1, packed.Length - 1, writable: false), CompressionMode.Decompress);
                    inflate.ReadExactly(bytes);
                }
                catch (EndOfStreamException)
                {
                    throw Corrupt();
                }

                break;
            default:
                throw new InvalidDataException($"Unknown packed history format {packed[0]}.");
        }

        return bytes;
    }

    /// <summary>The packed length, or -1 when it would exceed <paramref name="maxPacked"/>.</summary>
    static int PackLz(ReadOnlySpan<byte> src, Span<byte> dst, int maxPacked)
    {
        // Positions + 1 of the last 4-byte sequence with each hash; 0 = none. About one entry per input byte.
        int bits = Math.Clamp(32 - int.LeadingZeroCount(Math.Max(src.Length, 1) - 1), 8, MaxHashBits);
        Span<int> table = stackalloc int[1 << bits];
        table.Clear();
        dst[0] = Lz;
        int op = 1, ip = 0, anchor = 0, last = src.Length - MinMatch;
        while (ip <= last)
        {
            uint sequence = BinaryPrimitives.ReadUInt32LittleEndian(src[ip..]);
            int slot = Hash(sequence, bits);
            int candidate = table[slot] - 1;
            table[slot] = ip + 1;
            if (candidate < 0 || BinaryPrimitives.ReadUInt32LittleEndian(src[candidate..]) != sequence)
            {
                ip++;
                continue;
            }

            int matched = MinMatch + src[(candidate + MinMatch)..].CommonPrefixLength(src[(ip + MinMatch)..]);
            int literals = ip - anchor;
            if (op + literals + 15 > maxPacked) return -1;
            op += EncodedHistory.WriteVarint(dst[op..], (uint)literals);
            src.Slice(anchor, literals).CopyTo(dst[op..]);
            op += literals;
            op += EncodedHistory.WriteVarint(dst[op..], (uint)(ip - candidate));
            op += EncodedHistory.WriteVarint(dst[op..], (uint)(matched - MinMatch));
            ip += matched;
            anchor = ip;
            // The sequence just before the match's end, so that what follows can match the text the match covered.
            if (ip - 2 <= last) table[Hash(BinaryPrimitives.ReadUInt32LittleEndian(src[(ip - 2)..]), bits)] = ip - 2 + 1;
        }

        int rest = src.Length - anchor;
        if (op + rest + 5 > maxPacked) return -1;
        op += EncodedHistory.WriteVarint(dst[op..], (uint)rest);
        src[anchor..].CopyTo(dst[op..]);
        return op + rest;
    }

    static void UnpackLz(ReadOnlySpan<byte> src, Span<byte> dst)
    {
        int ip = 0, op = 0;
        while (true)
        {
            int literals = ReadLength(src, ref ip);
            if (literals > src.Length - ip || literals > dst.Length - op) throw Corrupt();
            src.Slice(ip, literals).CopyTo(dst[op..]);
            ip += literals;
            op += literals;
            if (ip == src.Length)
            {
                if (op != dst.Length) throw Corrupt();
                return;
            }

            int distance = ReadLength(src, ref ip);
            int matched = ReadLength(src, ref ip) + MinMatch;
            if (distance == 0 || distance > op || matched > dst.Length - op) throw Corrupt();
            // Byte by byte where the match overlaps what it writes (distance < length repeats the last bytes).
            if (distance >= matched) dst.Slice(op - distance, matched).CopyTo(dst[op..]);
            else for (int i = 0; i < matched; i++) dst[op + i] = dst[op - distance + i];
            op += matched;
        }
    }

    static int Hash(uint sequence, int bits) => (int)((sequence * 2654435761u) >> (32 - bits));

    static int ReadLength(ReadOnlySpan<byte> src, ref int position)
    {
        uint value = 0;
        for (int shift = 0; shift < 32; shift += 7)
        {
            if (position >= src.Length) throw Corrupt();
            byte b = src[position++];
            value |= (uint)(b & 0x7f) << shift;
            if (b < 0x80) return value <= int.MaxValue ? (int)value : throw Corrupt();
        }

        throw Corrupt();
    }

    static InvalidDataException Corrupt() => new("The packed history is corrupt.");
}
