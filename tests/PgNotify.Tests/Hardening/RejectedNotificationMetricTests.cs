using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.Internal;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>Forged notifications are not logged one line each, but each is counted, by reason.</summary>
public sealed class RejectedNotificationMetricTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Notify_ForgedPayloads_AreCountedByReasonInTheRejectedMetric()
    {
        var table = await db.CreateTableAsync();
        var channel = PostgresFixture.NewName("ch");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table]);
        var meter = host.Host.Services.GetRequiredService<PgNotifyMetrics>().Meter;
        var counted = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == meter && instrument.Name == "pgnotify.listener.notifications.rejected")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                counted.AddOrUpdate((string)tag.Value!, value, (_, v) => v + value);
            }
        });
        listener.Start();

        await db.ExecuteAsync(
            "SELECT pg_notify($1, '{\"v\":1,\"schema\":\"\",\"table\":\"x\",\"op\":\"INSERT\",\"n\":' || i || '}') FROM generate_series(1, 7) i", channel);
        await db.ExecuteAsync("SELECT pg_notify($1, $2)", channel,
            $$"""{"v":1,"schema":"public","table":"{{table}}","op":"INSERT","xid":1,"seq":1,"ref":9223372036854775807}""");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'real')");
        (await host.Changes.NextEventAsync()).Should().BeOfType<PgChange>();

        counted.Should().Contain("malformed", 7).And.Contain("ref_missing", 1);
        host.Logs.WithId(1006).Should().ContainSingle();
    }
}
