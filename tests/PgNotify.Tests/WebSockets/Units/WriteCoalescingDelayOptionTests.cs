using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
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

    [Theory]
    [InlineData("five milliseconds")] // not a TimeSpan
    [InlineData("\ud800")] // a lone surrogate
    [InlineData("99999999999999999999")] // a number too large for a TimeSpan
    [InlineData("-00:00:01")] // a TimeSpan, but negative
    [InlineData("2.00:00:00")] // a TimeSpan, but far too long
    public void FromConfiguration_AHostileValue_IsRefusedWhenTheOptionsAreRead_NotLaterOnTheSendPath(string value)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["PgNotify:WebSockets:WriteCoalescingDelay"] = value })
            .Build();
        using var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging()
            .AddPgNotify(o => o.ConnectionString = "Host=127.0.0.1;Username=postgres")
            .BuildServiceProvider();

        var read = () => services.GetRequiredService<IOptions<PgChangeWebSocketOptions>>().Value;

        read.Should().Throw<Exception>().Which.Should().Match<Exception>(e => e is InvalidOperationException || e is OptionsValidationException);
    }

    [Fact]
    public void Default_IsOff()
    {
        new PgChangeWebSocketOptions().WriteCoalescingDelay.Should().Be(TimeSpan.Zero);
        using var rounds = new DeferredWrites(TimeSpan.Zero, TimeProvider.System);
        rounds.TooSoon(TimeProvider.System.GetTimestamp()).Should().BeFalse("with no delay a write is never put off");
    }
}
