namespace PgNotify.Client;

/// <summary>
/// An error the client surfaces: a refused handshake, a refused subscription, or giving up on reconnecting.
/// <see cref="Code"/> says which.
/// </summary>
public sealed class PgNotifyException : Exception
{
    /// <summary>Creates an exception with a code and a message.</summary>
    /// <param name="code">The error code (see <see cref="Code"/>).</param>
    /// <param name="message">What happened and what to do.</param>
    /// <param name="statusCode">The HTTP status of a refused handshake, if any.</param>
    /// <param name="innerException">The exception that caused it, if any.</param>
    public PgNotifyException(string code, string message, int? statusCode = null, Exception? innerException = null)
        : base(message, innerException)
    {
        ArgumentNullException.ThrowIfNull(code);
        Code = code;
        StatusCode = statusCode;
    }

    /// <summary>
    /// What went wrong: <c>handshake_refused</c> (the server answered the upgrade with <see cref="StatusCode"/>, e.g.
    /// 401, 403 for an origin it does not allow, 404), <c>connect_failed</c> (the first connection could not be made),
    /// <c>gave_up</c> (<see cref="PgNotifyClientOptions.MaxRetries"/> failed attempts in a row), or an error code of
    /// the server's answer to the subscription (<c>unknown_table</c>, <c>forbidden</c>, <c>invalid_message</c>,
    /// <c>too_many_subscriptions</c>, <c>snapshot_unavailable</c>, ...; docs/protocol.md lists them).
    /// </summary>
    public string Code { get; }

    /// <summary>The HTTP status code of a refused handshake; <see langword="null"/> otherwise (and in browsers, which do not expose it).</summary>
    public int? StatusCode { get; }
}
