using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Core;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ServerRestartCollection
{
    public const string Name = "Stops the PostgreSQL server";
}

/// <summary>Stops the whole server, so it runs alone, after the parallel tests.</summary>
[Collection(ServerRestartCollection.Name)]
public sealed class ServerRestartTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [SkippableFact]
    public async Task Listener_AfterServerStoppedAndStarted_ReconnectsAndDeliversLaterChanges()
    {
        Skip.IfNot(db.Server.CanStopAndStart, $"The server from {db.Server.Source} cannot be stopped by the tests (set PGNOTIFY_TEST_STOP_COMMAND and PGNOTIFY_TEST_START_COMMAND).");
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var t = PostgresFixture.Quote(table);

        await db.Server.StopAsync();
        try
        {
            await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.State == PgListenerState.Reconnecting, because: "the listener notices the server is gone");
            // Let it fail a few times against a server that is down, so the backoff path really runs: three failed
            // attempts logged (1002 the first time, 1026 when the same error repeats), then it is still reconnecting.
            await ChangeStreamExtensions.WaitUntilAsync(
                () => host.Logs.WithId(1002).Count + host.Logs.WithId(1026).Count >= 3, TimeSpan.FromSeconds(30), because: "each failed attempt is logged");
            host.Status.LastError.Should().NotBeNull();
            host.Status.State.Should().Be(PgListenerState.Reconnecting);
        }
        finally
        {
            await db.Server.StartAsync();
        }

        var gap = await host.Changes.NextEventAsync(TimeSpan.FromSeconds(30));
        gap.Should().BeOfType<PgChangeGap>().Which.Reason.Should().Be(PgChangeGapReason.ListenerReconnected);

        Npgsql.NpgsqlConnection.ClearAllPools();
        db.DataSource.Clear();
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'after restart')");
        (await host.Changes.NextChangeAsync()).Data!.Value.GetProperty("name").GetString().Should().Be("after restart");
    }
}
