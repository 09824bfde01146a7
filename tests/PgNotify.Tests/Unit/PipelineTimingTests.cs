using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PgNotify.Internal;

namespace PgNotify.Tests.Unit;

/// <summary>
/// The timing of the listener's pure parts, on a fake clock: backoff bounds, overflow reports, loop restarts. No
/// database, no sleeps.
/// </summary>
public sealed class PipelineTimingTests
{
    [Fact]
    public void Backoff_CeilingDoublesFromTheInitialDelayUpToTheCap_AndEveryDelayStaysWithinIt()
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), new Random(42));

        Enumerable.Range(0, 8).Select(a => backoff.Ceiling(a).TotalMilliseconds)
            .Should().Equal(100, 200, 400, 800, 1600, 3200, 5000, 5000);
        backoff.Ceiling(1_000).Should().Be(TimeSpan.FromSeconds(5), "a huge attempt count neither overflows nor passes the cap");
        for (var attempt = 0; attempt < 50; attempt++)
        {
            backoff.Next(attempt).Should().BeGreaterThanOrEqualTo(TimeSpan.Zero).And.BeLessThanOrEqualTo(backoff.Ceiling(attempt));
        }
    }

    [Fact]
    public void OverflowReport_ReportsTheFirstDropAtOnce_ThenAtMostOncePerInterval_WithEverythingDroppedMeanwhile()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var report = new OverflowReport(time);

        report.Add(3, flush: false, out var first).Should().BeTrue();
        first.Should().Be(3);

        time.Advance(TimeSpan.FromMilliseconds(400));
        report.Add(5, flush: false, out _).Should().BeFalse("within the interval the drops are only counted");
        report.Owed(droppedMeanwhile: false).Should().BeTrue();
        report.DueIn().Should().Be(TimeSpan.FromMilliseconds(600));

        time.Advance(TimeSpan.FromMilliseconds(600));
        report.Add(2, flush: false, out var second).Should().BeTrue();
        second.Should().Be(7, "one report covers everything dropped since the last one");
        report.Owed(droppedMeanwhile: false).Should().BeFalse();
    }

    [Fact]
    public void OverflowReport_Flush_ReportsWhatIsOwedWithinTheInterval_AndNothingWhenNothingWasDropped()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var report = new OverflowReport(time);
        report.Add(1, flush: false, out _).Should().BeTrue();
        report.Add(4, flush: false, out _).Should().BeFalse();

        report.Add(0, flush: true, out var flushed).Should().BeTrue();
        flushed.Should().Be(4);
        report.Add(0, flush: true, out _).Should().BeFalse("nothing is owed");
    }

    [Fact]
    public async Task LoopSupervisor_LoopThatThrows_IsReportedFailedAndRestartedOnlyAfterItsBackoffElapses()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var options = Options.Create(new PgNotifyOptions { ReconnectInitialDelay = TimeSpan.FromSeconds(1), ReconnectMaxDelay = TimeSpan.FromSeconds(1) });
        var supervisor = new LoopSupervisor(options, new PgNotifyMetrics(services.GetRequiredService<IMeterFactory>()), time, NullLogger<PgNotifyListener>.Instance);
        var runs = 0;
        var secondRun = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();

        var supervised = supervisor.SuperviseAsync("test", async ct =>
        {
            if (Interlocked.Increment(ref runs) == 1)
            {
                throw new InvalidOperationException("boom");
            }

            secondRun.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }, null, stop.Token);

        supervisor.Status.Failures.Should().ContainSingle(f => f.Loop == "test" && f.RestartedAt == null);
        time.Advance(TimeSpan.FromSeconds(1)); // the backoff's cap: the restart is due however the jitter fell
        await secondRun.Task.WaitAsync(TimeSpan.FromSeconds(10));
        runs.Should().Be(2);
        supervisor.Status.Failures.Should().ContainSingle(f => f.RestartedAt == time.GetUtcNow(), "it restarted, and has not made progress yet");

        supervisor.Progressed("test");
        supervisor.Status.Failures.Should().BeEmpty();
        await stop.CancelAsync();
        await supervised.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
