namespace PgNotify.WebSockets.Internal;

/// <summary>What <c>AuthorizeChange</c> allows a socket to see of one change.</summary>
internal enum ChangeAccess
{
    /// <summary>Nothing: the change is withheld from the socket.</summary>
    Denied,

    /// <summary>The whole change.</summary>
    Full,

    /// <summary>The change without its <c>old</c> row (the hook refused the UPDATE's old row).</summary>
    WithoutOld,
}
