using DurableTask.Scheduler.Orchestration;
using Xunit;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// A finished instance's history is kept packed (HistoryPacking) and unpacked whenever it is read (history queries,
/// rewinds, the dashboard): every packing must unpack to exactly the bytes packed, and a damaged packing must be
/// refused, never read as some other history.
/// </summary>
public class HistoryPackingTests
{
    public static TheoryData<string, int> Inputs => new()
    {
        { "text", 1_000 },
        { "text", 16 * 1024 },
        { "text", 200_000 },
        { "random", 700 },
        { "random", 40_000 },
        { "runs", 3_000 },
        { "runs", 100_000 },
        { "mixed", 5_000 },
        { "mixed", 16 * 1024 + 1 },
    };

    static byte[] Make(string kind, int length, int seed)
    {
        var random = new Random(seed);
        var bytes = new byte[length];
        switch (kind)
        {
            case "random":
                random.NextBytes(bytes);
                break;
            case "runs":
                // Long runs of one byte: matches that overlap the bytes they copy (distance 1).
                for (int i = 0; i < length;)
                {
                    byte b = (byte)random.Next(4);
                    int run = random.Next(1, 300);
                    for (int j = 0; j < run && i < length; j++) bytes[i++] = b;
                }

                break;
            case "text":
                string[] words = ["SayHello", "\"Hello, Tokyo!\"", "[\"Seattle\"]", "hello-549e5a51-22", "\u0012\u0008", "Lima"];
                for (int i = 0; i < length;)
                {
                    foreach (byte b in System.Text.Encoding.UTF8.GetBytes(words[random.Next(words.Length)]))
                        if (i < length) bytes[i++] = b;
                    if (i < length) bytes[i++] = (byte)random.Next(256);
                }

                break;
            default:
                // Stretches of random bytes, of repeated earlier stretches, and of zeros.
                for (int i = 0; i < length;)
                {
                    int span = Math.Min(length - i, random.Next(1, 80));
                    switch (random.Next(3))
                    {
                        case 0: random.NextBytes(bytes.AsSpan(i, span)); break;
                        case 1 when i > 0:
                            int from = random.Next(i);
                            for (int j = 0; j < span; j++) bytes[i + j] = bytes[from + j];
                            break;
                    }

                    i += span;
                }

                break;
        }

        return bytes;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void EveryPacking_UnpacksToTheSameBytes(string kind, int length)
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var bytes = Make(kind, length, seed);
            // Room to spare: this checks the round trip; what a packing may cost is the next test's.
            var packed = HistoryPacking.Pack(bytes, maxPacked: bytes.Length * 2);
            Assert.NotNull(packed);
            Assert.Equal(length > HistoryPacking.MaxLzLength ? HistoryPacking.Deflate : HistoryPacking.Lz, packed[0]);
            Assert.Equal(bytes, HistoryPacking.Unpack(packed, bytes.Length));
        }
    }

    [Fact]
    public void RepetitiveBytes_PackSmall_AndIncompressibleOnes_AreRefusedUnderTheLimit()
    {
        var repetitive = Make("runs", 10_000, 1);
        var packed = HistoryPacking.Pack(repetitive, maxPacked: repetitive.Length / 2);
        Assert.NotNull(packed);
        Assert.True(packed.Length < repetitive.Length / 10, $"{packed.Length} of {repetitive.Length} bytes");

        var random = Make("random", 10_000, 2);
        Assert.Null(HistoryPacking.Pack(random, maxPacked: random.Length - random.Length / 8 - 1));
        var large = Make("random", 50_000, 3);
        Assert.Null(HistoryPacking.Pack(large, maxPacked: large.Length - large.Length / 8 - 1));
    }

    [Fact]
    public void ADamagedPacking_IsRefused()
    {
        var bytes = Make("text", 4_000, 4);
        var packed = HistoryPacking.Pack(bytes, maxPacked: bytes.Length)!;
        Assert.Equal(bytes, HistoryPacking.Unpack(packed, bytes.Length));

        Assert.Throws<InvalidDataException>(() => HistoryPacking.Unpack(packed[..^1], bytes.Length));
        Assert.Throws<InvalidDataException>(() => HistoryPacking.Unpack(packed, bytes.Length + 1));
        Assert.Throws<InvalidDataException>(() => HistoryPacking.Unpack(packed, bytes.Length - 1));
        Assert.Throws<InvalidDataException>(() => HistoryPacking.Unpack([], bytes.Length));
        Assert.Throws<InvalidDataException>(() => HistoryPacking.Unpack([9, 0], 0));

        var longer = Make("text", 40_000, 5);
        var deflated = HistoryPacking.Pack(longer, maxPacked: longer.Length)!;
        Assert.Equal(HistoryPacking.Deflate, deflated[0]);
        Assert.Throws<InvalidDataException>(() => HistoryPacking.Unpack(deflated[..(deflated.Length / 2)], longer.Length));
        Assert.Throws<InvalidDataException>(() => HistoryPacking.Unpack(deflated, longer.Length + 1));

        // A match reaching back before the start of the output.
        byte[] before = [HistoryPacking.Lz, 1, (byte)'a', 5, 0, 0];
        Assert.Throws<InvalidDataException>(() => HistoryPacking.Unpack(before, 6));
    }
}
