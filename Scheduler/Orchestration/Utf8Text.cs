using System.Text;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>Text kept as UTF-8 bytes: null stays null, and an empty string stays empty (not null).</summary>
static class Utf8Text
{
    public static byte[]? Encode(string? text) =>
        text is null ? null : text.Length == 0 ? [] : Encoding.UTF8.GetBytes(text);

    public static string? Decode(byte[]? bytes) =>
        bytes is null ? null : bytes.Length == 0 ? "" : Encoding.UTF8.GetString(bytes);
}
