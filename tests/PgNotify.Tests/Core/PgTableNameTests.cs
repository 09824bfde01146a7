namespace PgNotify.Tests.Core;

public sealed class PgTableNameTests
{
    [Theory]
    [InlineData("profiles", "public", "profiles")]
    [InlineData("sales.orders", "sales", "orders")]
    [InlineData("Order Items", "public", "Order Items")]
    [InlineData("\"we\"\"ird\"", "public", "we\"ird")]
    [InlineData("\"my.schema\".\"a.b\"", "my.schema", "a.b")]
    [InlineData("MixedCase", "public", "MixedCase")]
    public void Parse_ReadsSchemaAndExactName(string text, string schema, string name)
    {
        var parsed = PgTableName.Parse(text);
        parsed.Schema.Should().Be(schema);
        parsed.Name.Should().Be(name);
        PgTableName.Parse(parsed.ToString()).Should().Be(parsed, "ToString round-trips");
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("a.b.c", "must be 'table' or 'schema.table'")]
    [InlineData("\"open", "unclosed double quote")]
    [InlineData("a\"b", "double quote inside an unquoted part")]
    [InlineData("a.", "the table name is empty")]
    [InlineData("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "63-byte")]
    public void TryParse_RejectsBadNamesSayingWhy(string text, string reason)
    {
        PgTableName.TryParse(text, out _, out var error).Should().BeFalse();
        error.Should().Contain(reason);
    }

    [Fact]
    public void Backoff_GrowsExponentiallyWithJitterUpToTheCap()
    {
        var backoff = new PgNotify.Internal.Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2), new Random(42));
        backoff.Ceiling(0).Should().Be(TimeSpan.FromMilliseconds(100));
        backoff.Ceiling(3).Should().Be(TimeSpan.FromMilliseconds(800));
        backoff.Ceiling(10).Should().Be(TimeSpan.FromSeconds(2));
        backoff.Ceiling(1000).Should().Be(TimeSpan.FromSeconds(2));
        var delays = Enumerable.Range(0, 200).Select(_ => backoff.Next(10)).ToList();
        delays.Should().OnlyContain(d => d >= TimeSpan.Zero && d <= TimeSpan.FromSeconds(2));
        delays.Distinct().Count().Should().BeGreaterThan(150, "full jitter spreads the delays");
    }
}
