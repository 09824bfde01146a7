using System.Buffers;
using System.Text;
using System.Text.Json;
using CsCheck;
using PgNotify.Internal;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Properties;

/// <summary>
/// A change from a notification is framed from its rows' text, never parsed (issue 15's cheaper path). Properties:
/// <see cref="RowText"/> writes any JSON exactly as <see cref="JsonElement.WriteTo"/> writes the parsed value, with the
/// whitespace PostgreSQL's jsonb output puts between tokens, escapes, HTML characters and non-ASCII text; and a frame
/// built from a payload is byte for byte the frame of the same change built from parsed rows, with the rows still
/// unparsed afterwards. <c>CsCheck_Seed=&lt;seed&gt;</c> replays a failure.
/// </summary>
public sealed class RowTextProperties
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true, MaxDepth = int.MaxValue };

    /// <summary>Printable ASCII (every character the encoder escapes or not), a few non-ASCII ones and escapes.</summary>
    private static readonly Gen<string> AsciiString = Gen.OneOf(
        Gen.Char[' ', '~'].Array[0, 12].Select(chars => JsonSerializer.Serialize(new string(chars), ReadableOptions)),
        Gen.Char[' ', '~'].Array[0, 12].Select(chars => "\"" + new string(chars).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\""),
        Gen.OneOf("\"\u007f\"", "\"\u00e9t\u00e9\"", "\"\\u0041\"", "\"\\/\"", "\"a\\tb\"", "\"\U0001F600\"", "\"\u2028\""));

    private static readonly JsonSerializerOptions ReadableOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly Gen<string> Value = Gen.Recursive<string>((depth, self) => depth >= 3
        ? Gen.OneOf(AsciiString, HostileJson.Scalar)
        : Gen.Frequency(
            (4, Gen.OneOf(AsciiString, HostileJson.Scalar)),
            (1, self.Array[0, 4].Select(items => "[" + string.Join(", ", items) + "]")),
            (1, Gen.Select(Gen.OneOf(AsciiString, HostileJson.Key), self).Array[0, 4].Select(HostileJson.Object))));

    /// <summary>JSON text with whitespace between tokens, as jsonb's output (<c>{"a": 1, "b": [1, 2]}</c>) or pretty-printed.</summary>
    private static readonly Gen<string> Spaced = Gen.Select(Value, Gen.OneOf(" ", "\n  ", "\t", "\r\n"))
        .Select((json, space) => Space(json, space));

    [Fact]
    public void Write_AnyJson_WritesWhatWriteToWrites() =>
        Gen.OneOf(Value, Spaced).Sample(json =>
        {
            string expected;
            try
            {
                expected = Written(w => JsonDocument.Parse(json, ChangeGen.Deep).RootElement.WriteTo(w));
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                // An escaped lone surrogate: WriteTo cannot write it, and RowText must refuse it the same way (the frame
                // then carries the text as it came).
                FluentActions.Invoking(() => Written(w => RowText.Write(w, Encoding.UTF8.GetBytes(json))))
                    .Should().Throw<Exception>().Which.Should().BeOfType(ex.GetType());
                return;
            }

            Written(w => RowText.Write(w, Encoding.UTF8.GetBytes(json))).Should().Be(expected);
        }, iter: 40_000);

    [Fact]
    public void Change_FromPayload_IsTheFrameOfTheParsedChange_AndLeavesTheRowsUnparsed() =>
        ChangeGen.Change.Sample(written =>
        {
            var payload = ChangeGen.Payload(written);
            var fromText = PgChangePayload.Parse(Space(payload, " "), Now).Change!;
            var parsed = new PgChange(fromText.Table, fromText.Operation, ChangeGen.Element(written.Data), ChangeGen.Element(written.Old),
                fromText.TransactionId, fromText.Sequence, fromText.Timestamp, fromText.Position, Now);

            foreach (var includeOld in new[] { true, false })
            {
                var frame = Frames.Change(fromText, new ArrayBufferWriter<byte>(), includeOld);
                frame.Should().Equal(Frames.Change(parsed, new ArrayBufferWriter<byte>(), includeOld));
            }

            fromText.RowsParsed.Should().BeFalse("framing reads the rows' text only");
            ChangeGen.SameJson(fromText.Data, written.Data).Should().BeTrue();
            fromText.RowsParsed.Should().Be(written.Data is not null);
        }, iter: 2_000, print: ChangeGen.Print);

    /// <summary>Puts <paramref name="space"/> after every comma and colon outside strings (jsonb's own output style).</summary>
    private static string Space(string json, string space)
    {
        var text = new StringBuilder(json.Length * 2);
        var inString = false;
        for (var i = 0; i < json.Length; i++)
        {
            var c = json[i];
            text.Append(c);
            if (inString)
            {
                if (c == '\\')
                {
                    text.Append(json[++i]);
                }
                else if (c == '"')
                {
                    inString = false;
                }
            }
            else if (c == '"')
            {
                inString = true;
            }
            else if (c is ',' or ':' or '[' or '{')
            {
                text.Append(space);
            }
        }

        return text.ToString();
    }

    private static string Written(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(w);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
