using System.Collections.Immutable;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Nftables;

namespace Mesh.Ingress.Dataplane;

public static partial class IngressSandboxTable
{
    /// <summary>
    /// Builds the sandbox's table pass after pass, keeping each service's elements between passes: a service whose
    /// inputs (ports, mark, balancing, backend addresses after health) are unchanged gives the same element groups
    /// (the same objects), so the executor skips them without comparing (<see cref="NftTableMemory"/>), and the same
    /// state again gives the same table. A pass after a change looks only at the services it touched: which service
    /// records and tasks are not the objects of the last pass's state is found by walking both states' lists by
    /// reference (<see cref="ReferenceDelta{T}"/>), and the tasks stay grouped by service between passes. A state whose
    /// lists cannot be matched that way (the first pass, another node name, objects all decoded anew, a reordering)
    /// is built whole, grouping every task. One per sandbox (the dataplane's); one pass at a time.
    /// </summary>
    public sealed class Builder
    {
        /// <summary>Past this many records or tasks changed since the last pass, the pass groups every task instead.</summary>
        private const int MinChangedLimit = 256;

        private readonly Lock _gate = new();
        private Pass? _last;

        /// <summary>How many services' inputs the last pass computed (the services it looked at): every service with published ports on a whole build.</summary>
        public int LastPassServices { get; private set; }

        /// <summary>Whether the last pass was planned from the changed services (false: built whole, or the same state again).</summary>
        public bool LastPassByChanges { get; private set; }

        /// <inheritdoc cref="IngressSandboxTable.Build"/>
        public NftDesiredTable Build(ClusterState state, string sandboxIngressAddress, string? node = null, HealthChecks.BackendHealth? health = null)
        {
            ArgumentNullException.ThrowIfNull(state);
            lock (_gate)
            {
                return BuildLocked(state, sandboxIngressAddress, node, health);
            }
        }

        private NftDesiredTable BuildLocked(ClusterState state, string sandboxIngressAddress, string? node, HealthChecks.BackendHealth? health)
        {
            if (_last is { } last && ReferenceEquals(last.State, state) && last.Address == sandboxIngressAddress && last.Node == node && ReferenceEquals(last.Health, health))
            {
                (LastPassServices, LastPassByChanges) = (0, false);
                return last.Table; // a resync of the same state: the same value, nothing to plan
            }

            var snatTo = SnatAddress(sandboxIngressAddress);
            var byChanges = _last is { } previous && previous.Node == node ? ByChanges(previous, state, health) : null;
            var (parts, looked) = byChanges ?? Whole(state, node, health);
            var table = TableOf(parts.Ordered, parts.ChainUses.Keys, snatTo);
            _last = new Pass(state, sandboxIngressAddress, node, health, table, parts);
            (LastPassServices, LastPassByChanges) = (looked, byChanges is not null);
            return table;
        }

        /// <summary>Every service's part from every task, grouped anew; the parts of the last pass kept where their inputs are the same.</summary>
        private (Parts, int Looked) Whole(ClusterState state, string? node, HealthChecks.BackendHealth? health)
        {
            // Tasks by service in one pass, unsorted: a service whose record and task objects are the ones of the last pass
            // (and whose health verdicts cannot have changed) keeps its part without sorting or comparing anything else.
            var grouped = new Dictionary<string, List<ServiceTask>>(StringComparer.OrdinalIgnoreCase);
            foreach (var task in state.Tasks)
            {
                if (!grouped.TryGetValue(task.Service, out var list))
                {
                    grouped[task.Service] = list = [];
                }

                list.Add(task);
            }

            var sameView = _last is { } previous && previous.Node == node;
            var sameHealth = _last is { } before && ReferenceEquals(before.Health, health);
            var known = _last?.Parts;
            var ordered = new List<ServicePart>();
            var chains = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var service in state.Services.Where(s => MeshPorts(s).Any()).OrderBy(s => s.Name, StringComparer.Ordinal))
            {
                var own = grouped.TryGetValue(service.Name, out var list) ? (IReadOnlyList<ServiceTask>)list : [];
                var kept = known?.Find(service.Name);
                ServicePart part;
                if (kept is not null && sameView && (sameHealth || service.HealthCheck is null)
                    && ReferenceEquals(kept.Inputs.Service, service) && ReferenceLists.Same(kept.Tasks, own))
                {
                    part = kept;
                }
                else
                {
                    var inputs = InputsOf(own, service, node, health);
                    part = kept is not null && kept.Inputs.SameAs(inputs) ? kept with { Tasks = own, Inputs = inputs } : PartOf(own, inputs);
                }

                if (ordered.Count > 0 && string.Equals(ordered[^1].Inputs.Service.Name, service.Name, StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"service {service.Name} is in the cluster state twice");
                }

                ordered.Add(part);
                Parts.Count(chains, part, +1);
            }

            var tasks = grouped.ToImmutableDictionary(g => g.Key, g => (IReadOnlyList<ServiceTask>)g.Value, StringComparer.OrdinalIgnoreCase);
            return (Parts.Of(ordered, tasks, chains), ordered.Count);
        }

        /// <summary>
        /// The parts after the changes from the last pass's state to <paramref name="state"/>, looking only at the services
        /// whose record or tasks changed (and, when the health verdicts changed, the services with a health check); null
        /// when the changes cannot be told from the lists or do not fit this path (then the state is built whole).
        /// </summary>
        private static (Parts, int Looked)? ByChanges(Pass last, ClusterState state, HealthChecks.BackendHealth? health)
        {
            if (!last.Parts.ByChangesPossible
                || ReferenceDelta<ClusterService>.Of(last.State.Services, state.Services, Limit(state.Services.Count)) is not { } services
                || ReferenceDelta<ServiceTask>.Of(last.State.Tasks, state.Tasks, Limit(state.Tasks.Count)) is not { } tasks)
            {
                return null;
            }

            // The services to look at (by name as the records spell it) → their record now, or null: no part any more.
            var look = new Dictionary<string, ClusterService?>(StringComparer.Ordinal);
            foreach (var gone in services.Removed)
            {
                if (last.Parts.Find(gone.Name) is { } part && ReferenceEquals(part.Inputs.Service, gone))
                {
                    look[gone.Name] = null;
                }
            }

            foreach (var service in services.Added.Where(s => MeshPorts(s).Any()))
            {
                // A name twice (added twice, or beside an unchanged record): the whole build says so.
                if ((look.TryGetValue(service.Name, out var other) && other is not null)
                    || (last.Parts.Find(service.Name) is { } part && !services.Removed.Any(r => ReferenceEquals(r, part.Inputs.Service))))
                {
                    return null;
                }

                look[service.Name] = service;
            }

            var grouped = last.Parts.Tasks;
            foreach (var group in tasks.Removed.Concat(tasks.Added).GroupBy(t => t.Service, StringComparer.OrdinalIgnoreCase))
            {
                var now = grouped.GetValueOrDefault(group.Key, []).ToList();
                foreach (var gone in tasks.Removed.Where(t => string.Equals(t.Service, group.Key, StringComparison.OrdinalIgnoreCase)))
                {
                    var at = now.FindIndex(t => ReferenceEquals(t, gone));
                    if (at < 0)
                    {
                        return null; // not where the last pass grouped it: cannot happen, and then the whole build is right
                    }

                    now.RemoveAt(at);
                }

                now.AddRange(tasks.Added.Where(t => string.Equals(t.Service, group.Key, StringComparison.OrdinalIgnoreCase)));
                grouped = now.Count == 0 ? grouped.Remove(group.Key) : grouped.SetItem(group.Key, now);
                if (last.Parts.FindIgnoringCase(group.Key) is { } part)
                {
                    look.TryAdd(part.Inputs.Service.Name, part.Inputs.Service);
                }
            }

            if (!ReferenceEquals(last.Health, health))
            {
                foreach (var part in last.Parts.Ordered.Where(p => p.Inputs.Service.HealthCheck is not null))
                {
                    look.TryAdd(part.Inputs.Service.Name, part.Inputs.Service);
                }
            }

            var changed = new SortedDictionary<string, ServicePart?>(StringComparer.Ordinal);
            foreach (var (name, service) in look)
            {
                var known = last.Parts.Find(name);
                if (service is null)
                {
                    changed[name] = null;
                    continue;
                }

                var own = grouped.GetValueOrDefault(name, []);
                var inputs = InputsOf(own, service, last.Node, health);
                changed[name] = known is not null && known.Inputs.SameAs(inputs) ? known with { Tasks = own, Inputs = inputs } : PartOf(own, inputs);
            }

            return last.Parts.With(changed, grouped) is { } parts ? (parts, look.Values.Count(s => s is not null)) : null;
        }

        /// <summary>How many objects of a list of <paramref name="count"/> may change for a pass to go by the changes.</summary>
        private static int Limit(int count) => Math.Max(MinChangedLimit, count / 8);


        /// <summary>A pass's inputs and what it built from them.</summary>
        private sealed record Pass(ClusterState State, string Address, string? Node, HealthChecks.BackendHealth? Health, NftDesiredTable Table, Parts Parts);
    }

    /// <summary>
    /// The services' parts of one pass, immutable: in the services' order by name (the table's), found by name, the
    /// state's tasks by service, and how many parts go to each picking chain.
    /// </summary>
    private sealed class Parts
    {
        private readonly ImmutableDictionary<string, ServicePart>? _ignoringCase;

        private Parts(ServicePart[] ordered, ImmutableDictionary<string, ServicePart>? ignoringCase, ImmutableDictionary<string, IReadOnlyList<ServiceTask>> tasks, IReadOnlyDictionary<string, int> chainUses)
        {
            (Ordered, _ignoringCase, Tasks, ChainUses) = (ordered, ignoringCase, tasks, chainUses);
        }

        /// <summary>By service name (ordinal), the table's order.</summary>
        public ServicePart[] Ordered { get; }

        /// <summary>The state's tasks by their service name (ignoring case, as the services' tasks are matched), every task.</summary>
        public ImmutableDictionary<string, IReadOnlyList<ServiceTask>> Tasks { get; }

        /// <summary>Picking chain → how many of the parts' ports go to it (only chains in use).</summary>
        public IReadOnlyDictionary<string, int> ChainUses { get; }

        /// <summary>
        /// False when two services' names differ only by case: a task then belongs to both, which this path does not
        /// follow (the whole build does).
        /// </summary>
        public bool ByChangesPossible => _ignoringCase is not null;

        public static Parts Of(IReadOnlyList<ServicePart> ordered, ImmutableDictionary<string, IReadOnlyList<ServiceTask>> tasks, IReadOnlyDictionary<string, int> chainUses)
        {
            var ignoringCase = ImmutableDictionary.CreateBuilder<string, ServicePart>(StringComparer.OrdinalIgnoreCase);
            foreach (var part in ordered)
            {
                if (!ignoringCase.TryAdd(part.Inputs.Service.Name, part))
                {
                    return new Parts([.. ordered], null, tasks, chainUses);
                }
            }

            return new Parts([.. ordered], ignoringCase.ToImmutable(), tasks, chainUses);
        }

        public ServicePart? Find(string name)
        {
            var at = IndexOf(name);
            return at >= 0 ? Ordered[at] : null;
        }

        public ServicePart? FindIgnoringCase(string name) => _ignoringCase!.GetValueOrDefault(name);

        /// <summary>
        /// These parts with <paramref name="changed"/>'s (name → its new part, or null: removed) and the tasks grouped anew;
        /// null when a new name differs only by case from another service's (see <see cref="ByChangesPossible"/>).
        /// </summary>
        public Parts? With(SortedDictionary<string, ServicePart?> changed, ImmutableDictionary<string, IReadOnlyList<ServiceTask>> tasks)
        {
            var ignoringCase = _ignoringCase!;
            var chains = new Dictionary<string, int>(ChainUses, StringComparer.Ordinal);
            foreach (var name in changed.Keys)
            {
                if (Find(name) is { } old)
                {
                    ignoringCase = ignoringCase.Remove(name);
                    Count(chains, old, -1);
                }
            }

            foreach (var (name, part) in changed)
            {
                if (part is null)
                {
                    continue;
                }

                if (ignoringCase.ContainsKey(name))
                {
                    return null;
                }

                ignoringCase = ignoringCase.Add(name, part);
                Count(chains, part, +1);
            }

            // Merged in one walk: both are in order by name.
            var ordered = new List<ServicePart>(Ordered.Length + changed.Count);
            var i = 0;
            foreach (var (name, part) in changed)
            {
                for (; i < Ordered.Length && string.CompareOrdinal(Ordered[i].Inputs.Service.Name, name) < 0; i++)
                {
                    ordered.Add(Ordered[i]);
                }

                if (i < Ordered.Length && Ordered[i].Inputs.Service.Name == name)
                {
                    i++;
                }

                if (part is not null)
                {
                    ordered.Add(part);
                }
            }

            ordered.AddRange(Ordered.AsSpan(i));
            return new Parts([.. ordered], ignoringCase, tasks, chains);
        }

        public static void Count(Dictionary<string, int> chains, ServicePart part, int by)
        {
            foreach (var chain in part.Chains)
            {
                var uses = chains.GetValueOrDefault(chain) + by;
                if (uses == 0)
                {
                    chains.Remove(chain);
                }
                else
                {
                    chains[chain] = uses;
                }
            }
        }

        private int IndexOf(string name)
        {
            int low = 0, high = Ordered.Length - 1;
            while (low <= high)
            {
                var middle = low + ((high - low) / 2);
                var order = string.CompareOrdinal(Ordered[middle].Inputs.Service.Name, name);
                if (order == 0)
                {
                    return middle;
                }

                (low, high) = order < 0 ? (middle + 1, high) : (low, middle - 1);
            }

            return -1;
        }
    }
}
