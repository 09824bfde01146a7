using Microsoft.Extensions.Options;
using PgNotify.Internal;
using PgNotify.WebSockets;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Snapshots;

/// <summary>The snapshot options are validated at startup with messages that say what to change.</summary>
public sealed class SnapshotOptionsTests
{
    [Theory]
    [InlineData(0, 30, "PgNotify:WebSockets:MaxSnapshotRows must be greater than zero (it is 0)")]
    [InlineData(-1, 30, "PgNotify:WebSockets:MaxSnapshotRows must be greater than zero (it is -1)")]
    [InlineData(1_000_001, 30, "use at most 1,000,000 rows")]
    [InlineData(10, 0, "PgNotify:WebSockets:SnapshotTimeout must be greater than zero")]
    [InlineData(10, -5, "PgNotify:WebSockets:SnapshotTimeout must be greater than zero")]
    public void WebSocketOptions_BadSnapshotSettings_FailNamingTheFix(int maxRows, int timeoutSeconds, string message)
    {
        var options = new PgChangeWebSocketOptions { MaxSnapshotRows = maxRows, SnapshotTimeout = TimeSpan.FromSeconds(timeoutSeconds) };
        var result = new PgChangeWebSocketOptionsValidator(Options.Create(new PgNotifyOptions())).Validate(null, options);
        result.Failed.Should().BeTrue();
        result.FailureMessage.Should().Contain(message);
    }

    [Fact]
    public void WebSocketOptions_Defaults_Are10000RowsAnd30Seconds_AndValid()
    {
        var options = new PgChangeWebSocketOptions();
        options.MaxSnapshotRows.Should().Be(10_000);
        options.SnapshotTimeout.Should().Be(TimeSpan.FromSeconds(30));
        new PgChangeWebSocketOptionsValidator(Options.Create(new PgNotifyOptions())).Validate(null, options).Succeeded.Should().BeTrue();
    }

    [Theory]
    [InlineData(0, "PgNotify:MaxConcurrentSnapshots must be greater than zero (it is 0)")]
    [InlineData(1_001, "PgNotify:MaxConcurrentSnapshots is 1001")]
    public void CoreOptions_BadMaxConcurrentSnapshots_FailNamingTheFix(int value, string message)
    {
        var options = new PgNotifyOptions { ConnectionString = "Host=localhost", MaxConcurrentSnapshots = value };
        var result = new PgNotifyOptionsValidator().Validate(null, options);
        result.Failed.Should().BeTrue();
        result.FailureMessage.Should().Contain(message);
        new PgNotifyOptions().MaxConcurrentSnapshots.Should().Be(4);
    }
}
