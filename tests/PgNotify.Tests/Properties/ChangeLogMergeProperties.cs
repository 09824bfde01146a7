using CsCheck;
using PgNotify.Internal;

namespace PgNotify.Tests.Properties;

/// <summary>
/// The change-log reader's merge (<c>ChangeLogMerge</c>, the pure part of the reader), driven without a database: a model of concurrent
/// writers takes log positions, commits or rolls back in any order, and the reader reads snapshots, with actions
/// landing between a snapshot and its read of the lock holders. Whatever the interleaving, every committed position
/// must come out exactly once and in order, and nothing else. <c>CsCheck_Seed=&lt;seed&gt;</c> replays a failure.
/// </summary>
public sealed class ChangeLogMergeProperties
{
    private enum Step
    {
        Begin,
        WriteMore,
        Commit,
        Rollback,
        Read,
        ReadWithStepBetween,
    }

    [Fact]
    public void Merge_AnyInterleavingOfWritersAndReads_DeliversEveryCommittedPositionOnceInOrder() =>
        Gen.Select(Gen.Select(Gen.Enum<Step>(), Gen.Int[0, 1_000]).Array[1, 80], Gen.Int[1, 8], Gen.Bool)
            .Sample((steps, batchSize, commitTheRest) =>
            {
                var model = new Model(new ChangeLogMerge(batchSize, maxHoles: 100_000), batchSize);
                for (var i = 0; i < steps.Length; i++)
                {
                    var (step, pick) = steps[i];
                    if (step == Step.ReadWithStepBetween && i + 1 < steps.Length && steps[i + 1].Item1 is not (Step.Read or Step.ReadWithStepBetween))
                    {
                        // A writer acts between the reader's snapshot and its read of the lock holders.
                        var between = steps[++i];
                        model.Read(() => model.Apply(between.Item1, between.Item2));
                    }
                    else
                    {
                        model.Apply(step, pick);
                    }
                }

                model.EndAll(commitTheRest);
                for (var round = 0; round < 1_000 && !model.Done; round++)
                {
                    model.Read(null);
                }

                model.Delivered.Should().Equal(model.Committed.Order(), "every committed position, once, in order, and nothing else");
            }, iter: 5_000);

    private sealed class Model(ChangeLogMerge merge, int batchSize)
    {
        private readonly Dictionary<string, List<long>> _open = [];
        private readonly HashSet<long> _visible = [];
        private long _nextPosition;
        private int _nextTransaction;

        public List<long> Delivered { get; } = [];

        public List<long> Committed { get; } = [];

        public bool Done => merge.DeliveredThrough >= _nextPosition && _open.Count == 0;

        public void Apply(Step step, int pick)
        {
            var open = _open.Keys.Order(StringComparer.Ordinal).ToList();
            switch (step)
            {
                case Step.Begin:
                    _open["tx" + _nextTransaction++] = [++_nextPosition];
                    break;
                case Step.WriteMore when open.Count > 0:
                    _open[open[pick % open.Count]].Add(++_nextPosition);
                    break;
                case Step.Commit when open.Count > 0:
                    var committed = open[pick % open.Count];
                    foreach (var position in _open[committed])
                    {
                        _visible.Add(position);
                        Committed.Add(position);
                    }

                    _open.Remove(committed);
                    break;
                case Step.Rollback when open.Count > 0:
                    _open.Remove(open[pick % open.Count]);
                    break;
                case Step.Read or Step.ReadWithStepBetween:
                    Read(null);
                    break;
            }
        }

        public void EndAll(bool commit)
        {
            foreach (var transaction in _open.Keys.Order(StringComparer.Ordinal).ToList())
            {
                Apply(commit ? Step.Commit : Step.Rollback, 0);
            }
        }

        /// <summary>One read as ChangeLogReader.ReadCoreAsync does it: snapshot rows, then the lock holders, then merge.</summary>
        public void Read(Action? between)
        {
            var holes = merge.Holes;
            var maxSeen = merge.MaxSeen;
            var rows = _visible.Where(p => holes.ContainsKey(p) || p > maxSeen).Order().Take(batchSize)
                .Select(p => (p, $"{{\"v\":1,\"schema\":\"public\",\"table\":\"t\",\"op\":\"INSERT\",\"xid\":1,\"seq\":{p},\"data\":{{}}}}")).ToList();
            between?.Invoke();
            var holders = holes.Count > 0 || rows.Count > 0 ? new HashSet<string>(_open.Keys, StringComparer.Ordinal) : [];
            var batch = merge.Merge(rows, holders, rows.Count > 0 ? 0 : -1, DateTimeOffset.UnixEpoch);
            batch.Gap.Should().BeNull("nothing was pruned");
            Delivered.AddRange(batch.Changes.Select(c => c.Position!.Value));
        }

    }
}
