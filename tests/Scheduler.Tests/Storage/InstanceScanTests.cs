using DurableTask.Scheduler.Storage;

namespace DurableTask.Scheduler.Tests.Storage;

public sealed class InstanceScanTests
{
    [Theory]
    [InlineData("ab", "ac")]
    [InlineData("a\U0010FFFF", "b")]
    [InlineData("a\U0010FFFF\U0010FFFF", "b")]
    [InlineData("a\uD7FF", "a\uE000")]
    [InlineData("a\uFFFF", "a\U00010000")]
    [InlineData("a\U0001F600", "a\U0001F601")]
    public void UpperBound_IsTheLastCodePointPlusOne(string prefix, string expected)
    {
        string upper = InstanceScan.UpperBound(prefix)!;
        Assert.Equal(expected, upper);
        // Every id under the prefix sorts below it, in the stores' order (code points).
        foreach (var id in new[] { prefix, prefix + "\0", prefix + "z", prefix + "\uFFFF", prefix + "\U0010FFFF\U0010FFFF" })
            Assert.True(InstanceIdOrder.Instance.Compare(id, upper) < 0, $"'{id}' is not below '{upper}'");
    }

    [Fact]
    public void UpperBound_IsNull_WhenNoStringFollowsThePrefixRange()
    {
        Assert.Null(InstanceScan.UpperBound("\U0010FFFF\U0010FFFF"));
        // A lone surrogate has no place in the stores' order: the caller compares the prefix itself instead.
        Assert.Null(InstanceScan.UpperBound("a" + (char)0xD800));
    }
}
