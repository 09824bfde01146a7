using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>Fans each event out to every subscriber's bounded buffer. One writer: the listener's dispatcher.</summary>
internal sealed partial class PgChangeFeed : IPgChangeFeed
{
    private readonly Lock _gate = new();
    private readonly int _defaultCapacity;
    private readonly TimeProvider _time;
    private readonly PgNotifyMetrics _metrics;
    private readonly ILogger _logger;
    private PgChangeSubscription[] _subscribers = [];

    public PgChangeFeed(IOptions<PgNotifyOptions> options, TimeProvider time, PgNotifyMetrics metrics, ILogger<PgChangeFeed> logger)
    {
        _defaultCapacity = options.Value.ConsumerCapacity;
        _time = time;
        _metrics = metrics;
        _logger = logger;
    }

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    public PgChangeSubscription Subscribe(string? name = null, int? capacity = null)
    {
        if (capacity is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "The capacity must be greater than zero.");
        }

        var subscription = new PgChangeSubscription(name ?? "anonymous", capacity ?? _defaultCapacity, Remove);
        lock (_gate)
        {
            _subscribers = [.. _subscribers, subscription];
        }

        return subscription;
    }

    public void Publish(PgChangeEvent item)
    {
        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            if (!subscriber.Offer(item, _time) && item is PgChange)
            {
                _metrics.ChangeDropped(subscriber.Name);
                if (subscriber.DroppedCount == 1 || subscriber.DroppedCount % 10_000 == 0)
                {
                    Log.ConsumerOverflow(_logger, subscriber.Name, subscriber.DroppedCount);
                }
            }
        }
    }

    /// <summary>Offers every gap still owed to a subscriber (see <see cref="PgChangeSubscription.FlushPendingGap"/>).</summary>
    /// <returns><see langword="true"/> when some subscriber is still owed one (its buffer is full): try again later.</returns>
    public bool FlushPendingGaps()
    {
        var owed = false;
        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            owed |= subscriber.FlushPendingGap(_time);
        }

        return owed;
    }

    public void CompleteAll()
    {
        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            subscriber.Complete();
        }
    }

    private void Remove(PgChangeSubscription subscription)
    {
        lock (_gate)
        {
            _subscribers = [.. _subscribers.Where(s => !ReferenceEquals(s, subscription))];
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1201, Level = LogLevel.Warning,
            Message = "PgNotify consumer '{Consumer}' is not keeping up: its buffer is full and changes are dropped for it ({Dropped} so far). It will receive a gap marker.")]
        public static partial void ConsumerOverflow(ILogger logger, string consumer, long dropped);
    }
}
