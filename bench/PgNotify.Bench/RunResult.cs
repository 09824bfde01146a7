using System.Text.Json.Serialization;

namespace PgNotify.Bench;

/// <summary>One scenario in one mode: every figure the driver prints and writes to bench/results.</summary>
internal sealed class RunResult
{
    public string Scenario { get; set; } = "";
    public string Mode { get; set; } = "";
    public int Sockets { get; set; }
    public double TargetRate { get; set; }
    public string? Error { get; set; }
    public long RowsCommitted { get; set; }
    public double WriteSeconds { get; set; }
    public long Deliveries { get; set; }
    public long Expected { get; set; }
    public long Missing { get; set; }
    public long Duplicates { get; set; }
    public long Resyncs { get; set; }
    public int SocketsWithLoss { get; set; }
    public double P50Ms { get; set; }
    public double P90Ms { get; set; }
    public double P99Ms { get; set; }
    public double P999Ms { get; set; }
    public double MaxMs { get; set; }
    public double RowsPerSecond { get; set; }
    public double DeliveriesPerSecond { get; set; }
    public double ServerCpuSeconds { get; set; }
    public double ServerCpuUsPerDelivery { get; set; }
    public double ClientCpuSeconds { get; set; }
    public double ClientCpuUsPerDelivery { get; set; }
    public double WriterCpuSeconds { get; set; }
    public double PostgresCpuSeconds { get; set; }

    /// <summary>How many of PostgreSQL's backends serve the hosts' change sources (a LISTEN connection or a walsender each).</summary>
    public int SourceBackends { get; set; }

    /// <summary>Their CPU over the window: part of <see cref="PostgresCpuSeconds"/>.</summary>
    public double SourceBackendCpuSeconds { get; set; }
    public double MachineBusySeconds { get; set; }
    public double WallSeconds { get; set; }
    public long ServerRssStartBytes { get; set; }
    public long ServerRssBeforeBytes { get; set; }
    public long ServerRssAfterBytes { get; set; }
    public long ServerHeapBeforeBytes { get; set; }
    public long ServerHeapAfterBytes { get; set; }
    public double RssPerIdleSocketBytes { get; set; }
    public double HeapPerIdleSocketBytes { get; set; }
    public double ConnectSeconds { get; set; }
    public double FramesPerWrite { get; set; }

    /// <summary>PgNotify's sockets whose frames went straight to the connection's socket (DirectSocketWrites).</summary>
    public long DirectSockets { get; set; }

    /// <summary>PgNotify's plain-TCP sockets whose frames stayed on Kestrel's pipe (the client answered nothing in time).</summary>
    public long PipeSockets { get; set; }
    public long ServerPeakRssBytes { get; set; }
    public int SnapshotSockets { get; set; }
    public long SnapshotRows { get; set; }
    public int SnapshotsFailed { get; set; }
    public double SnapshotSeconds { get; set; }
    public long SnapshotWindowDeliveries { get; set; }
    public double SnapshotWindowP99Ms { get; set; }

    /// <summary>With <c>--instances N</c> (N &gt; 1): each host's share; the fields above are the sums over the hosts.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public InstanceResult[]? PerInstance { get; set; }
}

/// <summary>One host of a run with several instances, and the client sockets connected to it.</summary>
internal sealed class InstanceResult
{
    public int Port { get; set; }
    public int Sockets { get; set; }
    public double CpuSeconds { get; set; }
    public long Deliveries { get; set; }
    public long Missing { get; set; }
    public double CpuUsPerDelivery { get; set; }
    public long RssAfterBytes { get; set; }
    public long PeakRssBytes { get; set; }
}
