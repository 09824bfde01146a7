using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Operations;

public sealed class MetricsAndHealthTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Meter_ReportsSocketsSubscriptionsChangesFramesBytesLagReconnectsStateAndQueueUsage()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configure: o => o.HealthCheckInterval = TimeSpan.FromMilliseconds(300));
        var factory = host.App.Services.GetRequiredService<IMeterFactory>();
        var totals = new ConcurrentDictionary<string, double>();
        var units = new ConcurrentDictionary<string, string?>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                // Only this host's meter: every host in the test process has its own.
                if (instrument.Meter.Name == "PgNotify" && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    units[instrument.Name] = instrument.Unit;
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => totals.AddOrUpdate(instrument.Name, value, (_, v) => v + value));
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => totals[instrument.Name] = value);
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            if (instrument is Histogram<double>)
            {
                totals.AddOrUpdate(instrument.Name + ".count", 1, (_, v) => v + 1);
            }
            else
            {
                totals[instrument.Name] = value;
            }
        });
        listener.Start();

        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await socket.ReceiveTypeAsync("subscribed");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'x' FROM generate_series(1, 3) g");
        for (var i = 0; i < 3; i++)
        {
            await socket.ReceiveTypeAsync("change");
        }

        await db.TerminateListenersAsync();
        await socket.ReceiveTypeAsync("resync");
        await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.NotifyQueueUsage is not null);
        listener.RecordObservableInstruments();

        totals["pgnotify.websocket.connections"].Should().Be(1);
        totals["pgnotify.websocket.subscriptions"].Should().Be(1);
        totals["pgnotify.listener.notifications"].Should().Be(3);
        totals["pgnotify.websocket.frames_sent"].Should().BeGreaterThanOrEqualTo(6, "welcome, subscribed, 3 changes, resync");
        totals["pgnotify.websocket.bytes_sent"].Should().BeGreaterThan(100);
        totals["pgnotify.websocket.send_lag.count"].Should().Be(3);
        totals["pgnotify.listener.reconnects"].Should().BeGreaterThanOrEqualTo(1);
        totals["pgnotify.listener.gaps"].Should().Be(totals["pgnotify.listener.reconnects"], "each reconnect is one gap");
        totals["pgnotify.listener.state"].Should().Be((int)PgListenerState.Listening);
        totals.Should().ContainKey("pgnotify.notify_queue.usage");
        units["pgnotify.websocket.send_lag"].Should().Be("s");
        units["pgnotify.websocket.bytes_sent"].Should().Be("By");
    }

    [Fact]
    public async Task HealthCheck_IsHealthyWhileListening_AndUnhealthyWhenTheDatabaseIsUnreachable()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configureBuilder: b => b.Services.AddHealthChecks().AddPgNotify(),
            configureApp: app =>
            {
                app.UsePgChangeWebSockets();
                app.MapHealthChecks("/health");
            });
        using var http = new HttpClient();

        var healthy = await http.GetAsync(new Uri(host.BaseAddress, "/health"));
        healthy.StatusCode.Should().Be(System.Net.HttpStatusCode.OK);
        (await healthy.Content.ReadAsStringAsync()).Should().Be("Healthy");

        var report = await host.App.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        report.Entries["pgnotify"].Data["state"].Should().Be("Listening");

        // Unreachable database: point a second host at a port where nothing listens.
        await using var broken = await StartUnreachableAsync(table);
        var result = await broken.App.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        result.Status.Should().Be(HealthStatus.Unhealthy);
        result.Entries["pgnotify"].Description.Should().Contain("not being received");
    }

    private static async Task<WebHost> StartUnreachableAsync(string table)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddPgNotify(o =>
        {
            o.ConnectionString = "Host=127.0.0.1;Port=1;Username=postgres;Database=postgres;Timeout=1";
            o.Tables.Add(table);
        });
        builder.Services.AddHealthChecks().AddPgNotify();
        var app = builder.Build();
        app.UsePgChangeWebSockets();
        await app.StartAsync();
        return WebHost.Wrap(app);
    }
}
