using System.Globalization;
using System.Text.Json;
using CsCheck;
using PgNotify.Internal;

namespace PgNotify.Tests.Replication;

/// <summary>The replication source's pure parts: numbers, array literals, positions, the history.</summary>
public sealed class ReplicationUnitTests
{
    [Theory]
    [InlineData("1e+20", "100000000000000000000")]
    [InlineData("1.5e-07", "0.00000015")]
    [InlineData("-0", "0")]
    [InlineData("-0.000", "0.000")]
    [InlineData("1.50", "1.50")]
    [InlineData("1E400", "1" + "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("1.0e-3", "0.0010")]
    [InlineData("-12.5e1", "-125")]
    [InlineData("9223372036854775807", "9223372036854775807")]
    public void Numeric_CanonicalText_IsWhatNumericOutPrints(string input, string expected) =>
        PgNumericText.Canonical(input).Should().Be(expected);

    [Theory]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    [InlineData("01")]
    [InlineData("1.")]
    [InlineData(".5")]
    [InlineData("1e")]
    [InlineData("1e1001")]
    [InlineData("")]
    [InlineData("--1")]
    public void Numeric_NotAJsonNumber_IsNull(string input) => PgNumericText.Canonical(input).Should().BeNull();

    [Fact]
    public void Numeric_AnyText_GivesValidJsonNumberOrNull_NeverThrows() =>
        Gen.String["0123456789.eE+-NaIfity "].Sample(text =>
        {
            var result = PgNumericText.Canonical(text);
            if (result is not null)
            {
                using var doc = JsonDocument.Parse(result);
                doc.RootElement.ValueKind.Should().Be(JsonValueKind.Number);
                decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var a);
                decimal.TryParse(result, NumberStyles.Float, CultureInfo.InvariantCulture, out var b);
                a.Should().Be(b, $"'{text}' and '{result}' are the same number");
            }
        }, iter: 20_000);

    [Fact]
    public void ArrayLiteral_QuotesNullsNestingAndBounds()
    {
        PgArrayText.TryParse("""{"a\"b",NULL,"NULL","x,y","back\\slash"}""", ',', out var flat).Should().BeTrue();
        flat.Should().Equal(new object?[] { "a\"b", null, "NULL", "x,y", "back\\slash" });
        PgArrayText.TryParse("[0:1]={{1,2},{3,4}}", ',', out var nested).Should().BeTrue();
        nested.Should().HaveCount(2);
        ((List<object?>)nested[1]!).Should().Equal("3", "4");
        PgArrayText.TryParse("{}", ',', out var empty).Should().BeTrue();
        empty.Should().BeEmpty();
        PgArrayText.TryParse("{(1,2);(3,4)}", ';', out var boxes).Should().BeTrue();
        boxes.Should().Equal("(1,2)", "(3,4)");
    }

    [Fact]
    public void ArrayLiteral_AnyText_ParsesOrRefuses_NeverThrows() =>
        Gen.String["{}\",\\NUL[]=:01 a"].Sample(text => { _ = PgArrayText.TryParse(text, ',', out _); }, iter: 20_000);

    [Fact]
    public void ArrayLiteral_DeeperThanSixDimensions_IsRefused() =>
        PgArrayText.TryParse(new string('{', 10_000) + new string('}', 10_000), ',', out _).Should().BeFalse();

    [Fact]
    public void Positions_GrowWithCommitLsn_AndWithinATransaction()
    {
        ReplicationPosition.Of(0x1000, 1).Should().BeLessThan(ReplicationPosition.Of(0x1000, 2));
        // The next commit record starts at least 32 bytes later: even the last change of a full transaction is below it.
        ReplicationPosition.Of(0x1000, ReplicationPosition.MaxChangesPerTransaction).Should().BeLessThan(ReplicationPosition.Of(0x1000 + 32, 1));
        ReplicationPosition.Below(0x1000).Should().BeLessThan(ReplicationPosition.Of(0x1000, 1));
        var tooMany = () => ReplicationPosition.Of(0x1000, ReplicationPosition.MaxChangesPerTransaction + 1);
        tooMany.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public async Task History_KeepsTheNewest_ReportsWhatItDropped_SkipsRepeats_FiltersTables()
    {
        var history = new ReplicationHistory(3);
        (await history.GetPrunedThroughAsync(default)).Should().Be(long.MaxValue, "before streaming starts nothing can be replayed");
        history.StartAt(100);
        var a = PgTableName.Parse("a");
        var b = PgTableName.Parse("b");
        foreach (var (position, table) in new[] { (101L, a), (102L, b), (103L, a), (103L, a), (104L, b) })
        {
            history.Add(new PgChange(table, PgChangeOperation.Insert, null, null, 1, 1, null, position, DateTimeOffset.UnixEpoch));
        }

        history.Count.Should().Be(3, "the repeat of 103 is not held twice, and 101 was dropped");
        (await history.GetPrunedThroughAsync(default)).Should().Be(101);
        (await Read(history, 101, 104, null)).Should().Equal(102, 103, 104);
        (await Read(history, 102, 104, [a])).Should().Equal(103);
        (await Read(history, 0, 103, null)).Should().Equal(102, 103);
    }

    private static async Task<List<long>> Read(ReplicationHistory history, long after, long through, IReadOnlyCollection<PgTableName>? tables)
    {
        var positions = new List<long>();
        await foreach (var change in history.ReadAsync(after, through, tables, default))
        {
            positions.Add(change.Position!.Value);
        }

        return positions;
    }
}
