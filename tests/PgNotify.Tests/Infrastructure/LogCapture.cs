using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace PgNotify.Tests.Infrastructure;

/// <summary>A log entry captured by <see cref="LogCapture"/>.</summary>
public sealed record CapturedLog(string Category, int EventId, LogLevel Level, string Message, Exception? Exception);

/// <summary>Captures every log entry of a host, so tests can assert on event ids and counts.</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLog> _entries = new();

    public IReadOnlyList<CapturedLog> Entries => [.. _entries];

    public IReadOnlyList<CapturedLog> WithId(int eventId) => [.. _entries.Where(e => e.EventId == eventId)];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, this);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, LogCapture owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._entries.Enqueue(new CapturedLog(category, eventId.Id, logLevel, formatter(state, exception), exception));
    }
}
