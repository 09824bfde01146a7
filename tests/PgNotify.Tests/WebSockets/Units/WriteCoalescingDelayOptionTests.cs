using Microsoft.Extensions.Options;
using PgNotify.WebSockets;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.WebSockets.Units;

/// <summary><see cref="PgChangeWebSocketOptions.WriteCoalescingDelay"/>: off by default, a few milliseconds when set, never negative or long.</summary>
public sealed class WriteCoalescingDelayOptionTests
{
    [Theory]
    [InlineData(-1L)]
    [InlineData(-10_000_000L)]
    [InlineData(10_000_001L)] // 1 second and one tick
    [InlineData(long.MaxValue)]
    [InlineData(long.MinValue)]
    public void OutOfRange_FailsNamingTheRange(long ticks)
    {
        var options = new PgChangeWebSocketOptions { WriteCoalescingDelay = TimeSpan.FromTicks(ticks) };
        var result = new PgChangeWebSocketOptionsValidator(Options.Create(new PgNotifyOptions())).Validate(null, options);

        result.Failed.Should().BeTrue();
        result.FailureMessage.Should().Contain("PgNotify:WebSockets:WriteCoalescingDelay").And.Contain("between zero (off) and 1 second");
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(50_000L)] // 5 ms
    [InlineData(10_000_000L)] // 1 second
    public void InRange_IsValid(long ticks)
    {
        var options = new PgChangeWebSocketOptions { WriteCoalescingDelay = TimeSpan.FromTicks(ticks) };
        new PgChangeWebSocketOptionsValidator(Options.Create(new PgNotifyOptions())).Validate(null, options).Succeeded.Should().BeTrue();
    }

    [Fact]
    public void Default_IsOff()
    {
        new PgChangeWebSocketOptions().WriteCoalescingDelay.Should().Be(TimeSpan.Zero);
        using var rounds = new DeferredWrites(TimeSpan.Zero, TimeProvider.System);
        rounds.TooSoon(TimeProvider.System.GetTimestamp()).Should().BeFalse("with no delay a write is never put off");
    }
}
