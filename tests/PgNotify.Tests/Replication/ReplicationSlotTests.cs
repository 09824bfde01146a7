using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>Slots of dead instances are dropped; this instance's retained WAL is in health and metrics.</summary>
public sealed class ReplicationSlotTests(ReplicationFixture db) : IClassFixture<ReplicationFixture>
{
    [Fact]
    public async Task IdleSlotOfAnotherInstance_IsDropped_OwnSlotStays_RetainedWalIsReported()
    {
        var dead = "pgnotify_dead_" + Guid.NewGuid().ToString("N")[..10];
        var foreign = "other_" + Guid.NewGuid().ToString("N")[..10];
        await db.ExecuteAsync("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", dead);
        await db.ExecuteAsync("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", foreign);
        var table = await db.CreateTableAsync();
        var instance = ReplicationFixture.NewInstance();

        long? measured = null;
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == "pgnotify.replication.retained_wal")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((_, value, _, _) => measured = value);
        meters.Start();

        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o =>
        {
            ReplicationFixture.UseReplication(o, instance);
            o.ReplicationSlotIdleTimeout = TimeSpan.FromSeconds(1);
        });

        await ChangeStreamExtensions.WaitUntilAsync(() => !SlotExists(dead), TimeSpan.FromSeconds(30), "the dead instance's slot is dropped");
        SlotExists("pgnotify_" + instance).Should().BeTrue("an instance never drops its own slot");
        SlotExists(foreign).Should().BeTrue("slots that are not PgNotify's are left alone");

        var status = host.Host.Services.GetServices<IPgNotifyLoopStatus>().ToList();
        await ChangeStreamExtensions.WaitUntilAsync(() =>
        {
            var data = new Dictionary<string, object>();
            status.ForEach(s => s.AddData(data));
            return data.TryGetValue("replication_retained_wal_bytes", out var bytes) && (long)bytes >= 0;
        }, TimeSpan.FromSeconds(30), "health reports the retained WAL");
        await ChangeStreamExtensions.WaitUntilAsync(() =>
        {
            meters.RecordObservableInstruments();
            return measured is >= 0;
        }, TimeSpan.FromSeconds(30), "the metric reports the retained WAL");
        await db.ExecuteAsync("SELECT pg_drop_replication_slot($1)", foreign);
    }

    [Fact]
    public async Task WritesToUnpublishedTables_AreConfirmedWhileIdle_SoTheSlotKeepsNoWalForThem()
    {
        // Without the idle confirmation the slot stays at the last delivered commit: WAL of other tables is kept for
        // nothing, and a fast stop of PostgreSQL waits for ever on the walsender (which waits for this confirmation).
        var published = await db.CreateTableAsync();
        var other = await db.CreateTableAsync();
        var instance = ReplicationFixture.NewInstance();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [published],
            o => ReplicationFixture.UseReplication(o, instance));
        await host.Status.WaitUntilCaughtUpAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(published)} VALUES (1, 'delivered')");
        (await host.Changes.NextChangeAsync(TimeSpan.FromSeconds(30))).Table.Name.Should().Be(published);
        var delivered = await ConfirmedAsync(instance);

        for (var i = 0; i < 20; i++)
        {
            await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(other)} VALUES ($1, 'not published')", i);
        }

        var end = await db.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text");
        await ChangeStreamExtensions.WaitUntilAsync(
            () => db.ScalarAsync<bool>("SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $2", end, "pgnotify_" + instance)
                .GetAwaiter().GetResult(),
            TimeSpan.FromSeconds(30), $"the slot confirms past {end} (it was at {delivered} after the last delivered commit)");
    }

    private Task<string> ConfirmedAsync(string instance) =>
        db.ScalarAsync<string>("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", "pgnotify_" + instance);

    private bool SlotExists(string slot) =>
        db.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", slot).GetAwaiter().GetResult();
}
