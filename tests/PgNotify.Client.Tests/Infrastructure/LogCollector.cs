using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace PgNotify.Client.Tests.Infrastructure;

/// <summary>An ILoggerFactory that records every entry (event id, message) so a test can wait for one.</summary>
public sealed class LogCollector : ILoggerFactory, ILoggerProvider
{
    private readonly Channel<(int EventId, string Message)> _entries = Channel.CreateUnbounded<(int, string)>();

    public ConcurrentQueue<(int EventId, string Message)> All { get; } = new();

    public async Task<string> WaitForAsync(int eventId, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Collector.Timeout);
        try
        {
            while (true)
            {
                var entry = await _entries.Reader.ReadAsync(cts.Token);
                if (entry.EventId == eventId)
                {
                    return entry.Message;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No log entry {eventId}; logged: {string.Join(" | ", All.Select(e => $"{e.EventId} {e.Message}"))}");
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private sealed class Logger(LogCollector owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var entry = (eventId.Id, formatter(state, exception));
            owner.All.Enqueue(entry);
            owner._entries.Writer.TryWrite(entry);
        }
    }
}
