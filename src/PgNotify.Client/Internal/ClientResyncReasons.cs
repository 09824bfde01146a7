namespace PgNotify.Client.Internal;

/// <summary>The reasons of resyncs the client raises itself (documented on <see cref="PgResyncMessage.Reason"/>).</summary>
internal static class ClientResyncReasons
{
    public const string Reconnected = "reconnected";
    public const string ClientOverflow = "client_overflow";
    public const string InvalidFrame = "invalid_frame";
    public const string MessageTooBig = "message_too_big";
}
