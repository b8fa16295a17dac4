using System.Collections;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>
/// Makes hostile request bodies for a protobuf message type: random bytes, valid messages with random field values
/// (oversized strings, control characters, extreme numbers, undefined enum values, huge repeated fields), bit-level
/// mutations of valid messages, and string fields carrying invalid UTF-8.
/// </summary>
public sealed class ProtoFuzzer(Random rng, Func<string> knownInstanceId)
{
    static readonly HashSet<string> Wrappers =
    [
        "google.protobuf.StringValue", "google.protobuf.BytesValue", "google.protobuf.BoolValue", "google.protobuf.Int32Value",
        "google.protobuf.Int64Value", "google.protobuf.UInt32Value", "google.protobuf.UInt64Value", "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
    ];

    public enum Kind { RandomBytes, Structured, Mutated, InvalidUtf8, Oversized }

    public (Kind Kind, byte[] Bytes) Next(MessageDescriptor type)
    {
        int roll = rng.Next(100);
        var kind = roll switch
        {
            < 15 => Kind.RandomBytes,
            < 70 => Kind.Structured,
            < 88 => Kind.Mutated,
            < 97 => Kind.InvalidUtf8,
            _ => Kind.Oversized,
        };
        return (kind, kind switch
        {
            Kind.RandomBytes => RandomBytes(rng.Next(4) == 0 ? rng.Next(0, 70_000) : rng.Next(0, 64)),
            Kind.Structured => Serialize(Message(type, 0)),
            Kind.Mutated => Mutate(Serialize(Message(type, 0))),
            Kind.InvalidUtf8 => InvalidUtf8(type),
            _ => Oversized(type),
        });
    }

    // Bounds one generated message (in characters and elements), so nested repeated fields cannot multiply without limit.
    const long Budget = 3_000_000;
    long _budget;

    public IMessage Message(MessageDescriptor type, int depth)
    {
        if (depth == 0) _budget = Budget;
        var message = (IMessage)Activator.CreateInstance(type.ClrType)!;
        foreach (var field in type.Fields.InFieldNumberOrder())
        {
            if (rng.Next(100) < 35) continue;
            try
            {
                if (field.IsMap)
                {
                    var map = (IDictionary)field.Accessor.GetValue(message);
                    var keyField = field.MessageType.FindFieldByNumber(1);
                    var valueField = field.MessageType.FindFieldByNumber(2);
                    int count = Count();
                    for (int i = 0; i < count; i++)
                    {
                        var key = Value(keyField, depth);
                        var value = Value(valueField, depth);
                        if (key is not null && value is not null) map[key] = value;
                    }
                }
                else if (field.IsRepeated)
                {
                    var list = (IList)field.Accessor.GetValue(message);
                    int count = Count();
                    for (int i = 0; i < count; i++)
                    {
                        if (Value(field, depth) is { } value) list.Add(value);
                    }
                }
                else if (Value(field, depth) is { } value)
                {
                    field.Accessor.SetValue(message, value);
                }
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidCastException or InvalidOperationException)
            {
                // A value the generated type does not take (e.g. a null in a map); leave the field unset.
            }
        }

        return message;
    }

    int Count()
    {
        int count = rng.Next(100) switch
        {
            < 50 => 0,
            < 90 => rng.Next(1, 6),
            < 98 => rng.Next(6, 600),
            _ => rng.Next(5_000, 30_000),
        };
        count = (int)Math.Min(count, Math.Max(0, _budget / 50));
        _budget -= count * 10L;
        return count;
    }

    object? Value(FieldDescriptor field, int depth)
    {
        switch (field.FieldType)
        {
            case FieldType.String: return String(field.Name);
            case FieldType.Bytes: return ByteString.CopyFrom(RandomBytes(rng.Next(0, 64)));
            case FieldType.Bool: return rng.Next(2) == 0;
            case FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32: return Int32();
            case FieldType.UInt32 or FieldType.Fixed32: return unchecked((uint)Int32());
            case FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64: return Int64();
            case FieldType.UInt64 or FieldType.Fixed64: return unchecked((ulong)Int64());
            case FieldType.Double: return Double();
            case FieldType.Float: return (float)Double();
            case FieldType.Enum:
                int number = rng.Next(4) == 0 ? Int32() : field.EnumType.Values[rng.Next(field.EnumType.Values.Count)].Number;
                return Enum.ToObject(field.EnumType.ClrType, number);
            case FieldType.Message when Wrappers.Contains(field.MessageType.FullName):
                return Value(field.MessageType.FindFieldByNumber(1), depth);
            case FieldType.Message when field.MessageType.FullName == "google.protobuf.Timestamp":
                return new Google.Protobuf.WellKnownTypes.Timestamp { Seconds = Seconds(), Nanos = rng.Next(4) == 0 ? Int32() : rng.Next(0, 1_000_000_000) };
            case FieldType.Message when field.MessageType.FullName == "google.protobuf.Duration":
                return new Google.Protobuf.WellKnownTypes.Duration { Seconds = rng.Next(3) == 0 ? Int64() : rng.Next(-10, 100), Nanos = rng.Next(4) == 0 ? Int32() : 0 };
            case FieldType.Message:
                return depth >= 4 ? null : Message(field.MessageType, depth + 1);
            default:
                return null;
        }
    }

    long Seconds() => rng.Next(8) switch
    {
        0 => long.MaxValue,
        1 => long.MinValue,
        2 => -62135596800L - 1,
        3 => 253402300799L + 1,
        4 => DateTimeOffset.UtcNow.ToUnixTimeSeconds() + rng.Next(-1000, 1000),
        5 => DateTimeOffset.UtcNow.AddDays(rng.Next(30, 3000)).ToUnixTimeSeconds(),
        6 => 0,
        _ => rng.NextInt64(-62135596800L, 253402300799L),
    };

    int Int32() => rng.Next(10) switch
    {
        0 => int.MaxValue,
        1 => int.MinValue,
        2 => -1,
        3 => 0,
        4 => rng.Next(-1000, 0),
        5 => rng.Next(),
        _ => rng.Next(0, 200),
    };

    long Int64() => rng.Next(6) switch
    {
        0 => long.MaxValue,
        1 => long.MinValue,
        2 => -1,
        _ => rng.NextInt64(-1000, 1_000_000),
    };

    double Double() => rng.Next(6) switch
    {
        0 => double.NaN,
        1 => double.PositiveInfinity,
        2 => double.MinValue,
        _ => rng.NextDouble() * 1e6,
    };

    string String(string field)
    {
        var value = AnyString(field);
        if (value.Length > _budget) value = value[..(int)Math.Max(0, Math.Min(value.Length, _budget / 10))];
        _budget -= value.Length + 1;
        return value;
    }

    string AnyString(string field)
    {
        bool idLike = field.Contains("instance_id", StringComparison.Ordinal) || field.EndsWith("Id", StringComparison.Ordinal) || field == "instanceId";
        return rng.Next(20) switch
        {
            0 => "",
            1 => new string('x', 101),
            2 => new string('y', 1025),
            3 => new string('z', rng.Next(60_000, 70_000)),
            4 => rng.Next(10) == 0 ? new string('p', 1_100_000) : Ascii(rng.Next(1, 2000)),
            5 => "line\r\nbreak\0nul\u0007bell",
            6 => "émoji 😀 \u202Eright-to-left",
            7 => "@" + Ascii(rng.Next(0, 8)) + "@" + Ascii(rng.Next(0, 8)),
            8 => "@@",
            9 => "{\"json\":" + new string('[', 5000) + "}",
            10 => "' OR 1=1; --",
            11 => "../../etc/passwd",
            12 or 13 or 14 => knownInstanceId(),
            _ => idLike ? Guid.NewGuid().ToString("N") : Ascii(rng.Next(1, 40)),
        };
    }

    string Ascii(int length)
    {
        var chars = new char[length];
        for (int i = 0; i < length; i++) chars[i] = (char)rng.Next(0x20, 0x7F);
        return new string(chars);
    }

    byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        return bytes;
    }

    static byte[] Serialize(IMessage message)
    {
        try
        {
            return message.ToByteArray();
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or EncoderFallbackException)
        {
            return [];
        }
    }

    byte[] Mutate(byte[] bytes)
    {
        if (bytes.Length == 0) return RandomBytes(rng.Next(1, 16));
        var list = bytes.ToList();
        int edits = rng.Next(1, 6);
        for (int i = 0; i < edits && list.Count > 0; i++)
        {
            int at = rng.Next(list.Count);
            switch (rng.Next(5))
            {
                case 0: list[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: list.RemoveRange(at, list.Count - at); break;
                case 2: list.InsertRange(at, RandomBytes(rng.Next(1, 8))); break;
                case 3: list[at] = 0xFF; break;
                default: list.AddRange(list.Take(Math.Min(list.Count, 256)).ToArray()); break;
            }
        }

        return list.ToArray();
    }

    /// <summary>A valid message followed by a string field whose bytes are not UTF-8 (the later occurrence wins when parsed).</summary>
    byte[] InvalidUtf8(MessageDescriptor type)
    {
        var strings = type.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.String).ToList();
        var prefix = Serialize(Message(type, 0));
        if (strings.Count == 0) return Mutate(prefix);
        var field = strings[rng.Next(strings.Count)];
        byte[][] invalid = [[0xC3, 0x28], [0xFF, 0xFE, 0xFD], [0xED, 0xA0, 0x80], [0xF0, 0x28, 0x8C, 0x28], [0x80], [0xC0, 0xAF]];
        var payload = invalid[rng.Next(invalid.Length)];
        using var stream = new MemoryStream();
        stream.Write(prefix);
        var output = new CodedOutputStream(stream, leaveOpen: true);
        output.WriteTag(field.FieldNumber, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(payload.Concat(Encoding.ASCII.GetBytes("tail")).ToArray()));
        output.Flush();
        return stream.ToArray();
    }

    /// <summary>A length prefix that promises more than is sent, or a message over the server's size limit.</summary>
    byte[] Oversized(MessageDescriptor type)
    {
        if (rng.Next(10) != 0)
        {
            using var stream = new MemoryStream();
            var output = new CodedOutputStream(stream, leaveOpen: true);
            output.WriteTag(rng.Next(1, 20), WireFormat.WireType.LengthDelimited);
            output.WriteLength(int.MaxValue);
            output.WriteRawTag(1, 2, 3);
            output.Flush();
            return stream.ToArray();
        }

        var strings = type.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.String && !f.IsRepeated).ToList();
        if (strings.Count == 0) return RandomBytes(17 * 1024 * 1024);
        var message = (IMessage)Activator.CreateInstance(type.ClrType)!;
        strings[rng.Next(strings.Count)].Accessor.SetValue(message, new string('o', 17 * 1024 * 1024));
        return Serialize(message);
    }
}
