using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// The bounded hand-off between Npgsql's read path (the only writer: <see cref="OnNotification"/>, and the reconnect
/// marker) and the change source's dispatcher (the only reader). A full inbox drops, and counts what it dropped, so
/// that the read path never blocks; the source reports the count as a gap.
/// </summary>
internal sealed class NotificationInbox
{
    private readonly string _channel;
    private readonly PgNotifyMetrics _metrics;
    private readonly Channel<string?> _channelOfPayloads;
    private long _dropped;

    public NotificationInbox(IOptions<PgNotifyOptions> options, PgNotifyMetrics metrics)
    {
        _channel = options.Value.Channel;
        _metrics = metrics;
        _channelOfPayloads = Channel.CreateBounded<string?>(new BoundedChannelOptions(options.Value.InboxCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>Payloads in arrival order; <see langword="null"/> marks a reconnect (what was sent meanwhile is lost).</summary>
    public ChannelReader<string?> Reader => _channelOfPayloads.Reader;

    /// <summary>Whether some payload was dropped since the last <see cref="TakeDropped"/>.</summary>
    public bool HasDropped => Interlocked.Read(ref _dropped) != 0;

    /// <summary>How many payloads were dropped since the last call; resets the count.</summary>
    public long TakeDropped() => Interlocked.Exchange(ref _dropped, 0);

    /// <summary>The notification handler. Runs on Npgsql's read path: hands off and returns, never blocks.</summary>
    public void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        if (!string.Equals(e.Channel, _channel, StringComparison.Ordinal))
        {
            return;
        }

        _metrics.NotificationReceived();
        Write(e.Payload);
    }

    /// <summary>Marks a reconnect, ordered after everything received before the loss.</summary>
    public void MarkReconnected() => Write(null);

    /// <summary>No more notifications: the dispatcher ends once it has read what is left.</summary>
    public void Complete() => _channelOfPayloads.Writer.TryComplete();

    private void Write(string? payload)
    {
        if (!_channelOfPayloads.Writer.TryWrite(payload))
        {
            Interlocked.Increment(ref _dropped);
        }
    }
}
