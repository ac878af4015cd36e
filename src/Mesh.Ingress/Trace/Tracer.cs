using System.Globalization;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Trace;

/// <summary>
/// Walks a new connection through one node's captured kernel state (<see cref="NodeSnapshot"/>), step by step as the
/// packet walk (ARCHITECTURE.md) describes it: host nat → (FORWARD or MASQUERADE) → the sandbox's mark, dispatch and
/// service chain → the candidate backends → their task's rules when the task is local. It stops at the first place the
/// connection would be refused or dropped and says why. Pure: everything it reads is in the snapshot.
/// </summary>
public static class Tracer
{
    /// <summary>What the trace reads for the task side: the nat and filter tables of the task's namespace.</summary>
    public static IReadOnlyList<string> TaskTables { get; } = ["nat", "filter"];

    public static TraceResult Trace(TraceRequest request, NodeSnapshot kernel)
    {
        var walk = new Walk(request, kernel);
        return walk.Run();
    }

    /// <summary>The ingress addresses whose task rules the trace would show (candidates on this node, or the traced address itself).</summary>
    public static IReadOnlyList<string> LocalTaskAddresses(TraceRequest request, NodeSnapshot kernel)
    {
        var result = Trace(request, kernel);
        var addresses = result.Backends?.Candidates.Where(c => c.Node == kernel.Node).Select(c => c.Address).ToList() ?? [];
        if (!kernel.IsLocal(request.Address) && kernel.Tasks.TryGetValue(request.Address, out var task) && task.Node == kernel.Node)
        {
            addresses.Add(request.Address);
        }

        return addresses.Distinct(StringComparer.Ordinal).ToArray();
    }

    private sealed class Walk(TraceRequest request, NodeSnapshot kernel)
    {
        private readonly List<TraceStep> _steps = [];
        private readonly List<string> _notes = [];
        private readonly string _host = $"node {kernel.Node}";
        private readonly string _sandbox = $"sandbox {kernel.SandboxNamespace}";
        private readonly string _proto = request.Proto;

        public TraceResult Run()
        {
            var fromLocal = request.From is { } from && kernel.IsLocal(from);
            var destinationLocal = kernel.IsLocal(request.Address);
            if (!destinationLocal && kernel.Tasks.TryGetValue(request.Address, out var task) && task.Node == kernel.Node)
            {
                // The far side of another node's trace: a sandbox DNATed the connection to this local task.
                var (steps, verdict, reason) = TaskSide(request.Address, request.Port, task);
                _steps.AddRange(steps);
                return Done(verdict, reason);
            }

            var packet = new TracedPacket(_proto, request.From, request.Address, request.Port, fromLocal, destinationLocal, null);
            var hook = fromLocal ? "OUTPUT" : "PREROUTING";
            var nat = IptablesSave.Parse(kernel.HostNat);
            var jump = nat.Jumps.FirstOrDefault(j => j.Table == "nat" && j.Chain == hook && IptablesRuleMatch.Option(j.Rule, "-j") == HostRules.Ingress);
            if (jump is null)
            {
                _steps.Add(new TraceStep(_host, "nat", hook, null, $"no rule jumps to {HostRules.Ingress}: the daemon has not installed the host rules"));
                return Done(TraceVerdict.NotMesh, $"{kernel.Node} has no jump from nat {hook} to {HostRules.Ingress}: nothing here is the mesh's");
            }

            if (Match(jump.Rule, packet, "nat", hook) != IptablesMatch.Matches)
            {
                _steps.Add(new TraceStep(_host, "nat", hook, jump.Rule, $"{request.Address} is not an address of {kernel.Node}: the rule does not match"));
                return Done(TraceVerdict.NotMesh, $"{request.Address} is not an address of {kernel.Node}: the mesh takes only connections to the node's own addresses, this one is routed on");
            }

            _steps.Add(new TraceStep(_host, "nat", hook, jump.Rule, $"jump to {HostRules.Ingress}"));
            var dnat = FirstMatch(nat, "nat", HostRules.Ingress, packet);
            if (dnat is null || IptablesRuleMatch.Option(dnat, "-j") != "DNAT" || Endpoint(IptablesRuleMatch.Option(dnat, "--to-destination")) is not { } sandboxLeg)
            {
                _steps.Add(new TraceStep(_host, "nat", HostRules.Ingress, dnat, $"no rule for {_proto}/{Port(request.Port)}: not published, so the connection stays on {kernel.Node}"));
                return kernel.LocalListeners.Contains((_proto, request.Port))
                    ? Done(TraceVerdict.NotMesh, $"{_proto}/{Port(request.Port)} is not published; a process on {kernel.Node} itself listens on it and answers, not the mesh")
                    : Done(TraceVerdict.Refused, $"{_proto}/{Port(request.Port)} is not published (no rule in {HostRules.Ingress}) and nothing on {kernel.Node} listens on it: {RefusedHow}");
            }

            if (kernel.Tasks.TryGetValue(sandboxLeg.Address, out var direct))
            {
                return HostMode(nat, packet, direct.Service);
            }

            _steps.Add(new TraceStep(_host, "nat", HostRules.Ingress, dnat, $"DNAT to {sandboxLeg.Address}:{Port(sandboxLeg.Port)}, the ingress sandbox's gateway leg"));
            var toSandbox = packet with { Destination = sandboxLeg.Address, DestinationPort = sandboxLeg.Port, DestinationIsLocal = false, OutInterface = kernel.GatewayBridge };
            if (fromLocal)
            {
                var masquerade = FirstMatch(nat, "nat", HostRules.Postrouting, toSandbox);
                _steps.Add(new TraceStep(_host, "nat", HostRules.Postrouting, masquerade, masquerade is not null && IptablesRuleMatch.Option(masquerade, "-j") == "MASQUERADE"
                    ? $"MASQUERADE: a locally sourced connection leaves with {kernel.GatewayBridge}'s address, so the reply returns through the node"
                    : "no MASQUERADE for a locally sourced connection: the sandbox's reply would not find its way back"));
            }
            else if (!Forwarded(toSandbox))
            {
                return Done(TraceVerdict.Dropped, $"filter FORWARD drops {_proto}/{Port(sandboxLeg.Port)} to the sandbox: no {HostRules.Ingress} rule accepts it and the policy is DROP");
            }

            return Sandbox(sandboxLeg);
        }

        /// <summary>
        /// <c>mode=host</c>: the node DNATs the published port straight to its own tasks (no sandbox, no SNAT), one rule
        /// per task spread by <c>statistic nth</c>; FORWARD accepts the connection by its original port.
        /// </summary>
        private TraceResult HostMode(IptablesSave nat, TracedPacket packet, string service)
        {
            var rules = (nat.OwnedChains.GetValueOrDefault(("nat", HostRules.Ingress)) ?? [])
                .Where(r => IptablesRuleMatch.Option(r, "-j") == "DNAT" && IptablesRuleMatch.Evaluate(r, packet) == IptablesMatch.Matches)
                .Select(r => (Rule: r, To: Endpoint(IptablesRuleMatch.Option(r, "--to-destination"))))
                .Where(x => x.To is not null)
                .ToList();
            foreach (var (rule, to) in rules)
            {
                _steps.Add(new TraceStep(_host, "nat", HostRules.Ingress, rule,
                    $"DNAT straight to {to!.Value.Address}:{Port(to.Value.Port)} (mode=host: {rules.Count.ToString(CultureInfo.InvariantCulture)} local task(s) share new connections)"));
            }

            var filter = IptablesSave.Parse(kernel.HostFilter);
            var accept = (filter.OwnedChains.GetValueOrDefault(("filter", HostRules.Ingress)) ?? [])
                .FirstOrDefault(r => r.Contains($"--ctorigdstport {Port(request.Port)} ", StringComparison.Ordinal) && r.StartsWith($"-p {_proto} ", StringComparison.Ordinal) && IptablesRuleMatch.Option(r, "-j") == "ACCEPT");
            if (accept is not null)
            {
                _steps.Add(new TraceStep(_host, "filter", HostRules.Ingress, accept, "ACCEPT (forwarded to the task, matched by the connection's original port)"));
            }
            else if ((Policy(kernel.HostFilter, "filter", "FORWARD") ?? "ACCEPT") == "DROP")
            {
                _steps.Add(new TraceStep(_host, "filter", "FORWARD", null, "no rule accepts the DNATed connection and FORWARD's policy is DROP"));
                return Done(TraceVerdict.Dropped, $"filter FORWARD drops {_proto}/{Port(request.Port)} to the local task: no {HostRules.Ingress} rule accepts it and the policy is DROP");
            }

            var candidates = new List<TraceBackend>();
            foreach (var (_, to) in rules)
            {
                var (address, port) = to!.Value;
                kernel.Tasks.TryGetValue(address, out var task);
                var side = task is not null && kernel.LocalTaskRules.ContainsKey(address) ? TaskSide(address, port, task).Steps : null;
                candidates.Add(new TraceBackend(candidates.Count, address, port, 1, task?.Name, task?.Node ?? kernel.Node, null, side, null));
            }

            var backends = new TraceBackendSet(service, "-", $"mode=host: statistic nth spreads new connections over the {candidates.Count.ToString(CultureInfo.InvariantCulture)} task(s) of {service} on {kernel.Node}", candidates);
            return Done(TraceVerdict.Forwarded,
                $"DNAT straight to one of {candidates.Count.ToString(CultureInfo.InvariantCulture)} local task(s) of service {service} (mode=host: no sandbox, no SNAT, the task sees the client's address)", backends);
        }

        /// <summary>filter FORWARD: Mesh's chain accepts the published port; otherwise the chain's policy decides.</summary>
        private bool Forwarded(TracedPacket packet)
        {
            var filter = IptablesSave.Parse(kernel.HostFilter);
            var accept = filter.Jumps.Any(j => j.Table == "filter" && j.Chain == "FORWARD" && IptablesRuleMatch.Option(j.Rule, "-j") == HostRules.Ingress)
                ? FirstMatch(filter, "filter", HostRules.Ingress, packet)
                : null;
            if (accept is not null && IptablesRuleMatch.Option(accept, "-j") == "ACCEPT")
            {
                _steps.Add(new TraceStep(_host, "filter", HostRules.Ingress, accept, "ACCEPT (forwarded to the sandbox)"));
                _notes.Add($"rules in filter FORWARD that are not Mesh's and come before the jump to {HostRules.Ingress} are not evaluated");
                return true;
            }

            var policy = Policy(kernel.HostFilter, "filter", "FORWARD") ?? "ACCEPT";
            _steps.Add(new TraceStep(_host, "filter", "FORWARD", $":FORWARD {policy}", policy == "DROP"
                ? $"no {HostRules.Ingress} rule accepts it and FORWARD's policy is DROP"
                : $"no {HostRules.Ingress} rule accepts it; FORWARD's policy {policy} lets it through"));
            return policy != "DROP";
        }

        private TraceResult Sandbox((string Address, int Port) leg)
        {
            if (kernel.Dataplane == "ipvs")
            {
                return IpvsSandbox(leg);
            }

            if (kernel.Dataplane != "nftables")
            {
                _steps.Add(new TraceStep(_sandbox, "", "", null, $"not traced: mesh trace does not know the {kernel.Dataplane} dataplane"));
                return Done(TraceVerdict.Unsupported, $"mesh trace does not know the {kernel.Dataplane} dataplane's sandbox");
            }

            var port = leg.Port;
            var delivered = $"the connection is delivered to the sandbox itself ({leg.Address}:{Port(port)}), where nothing listens: {RefusedHow}";
            if (kernel.SandboxNft is null)
            {
                _steps.Add(new TraceStep(_sandbox, "ip mesh", "", null, "the table does not exist"));
                return Done(TraceVerdict.Refused, $"the sandbox has no ip mesh table (the daemon has not converged?): {delivered}");
            }

            var view = NftSandboxView.Parse(kernel.SandboxNft);
            var lookup = $"iifname \"{NodeNetworkOptions.SandboxGatewayInterface}\" meta l4proto {{ tcp, udp }} meta mark set meta l4proto . th dport map @published-ports";
            if (!view.MarksPublishedPorts)
            {
                _steps.Add(new TraceStep(_sandbox, "ip mesh", "mark-published", null, "no rule marks published ports"));
                return Done(TraceVerdict.Refused, $"the sandbox's mark-published chain has no rule reading @published-ports: {delivered}");
            }

            if (view.MarkOf(_proto, port) is not { } mark)
            {
                _steps.Add(new TraceStep(_sandbox, "ip mesh", "mark-published", lookup, $"@published-ports has no element {_proto} . {Port(port)}: no mark"));
                return Done(TraceVerdict.Refused, $"{_proto}/{Port(port)} has no mark in the sandbox (the host rule and the sandbox disagree): {delivered}");
            }

            var markText = NftSandboxView.MarkText(mark);
            _steps.Add(new TraceStep(_sandbox, "ip mesh", "mark-published", $"@published-ports: {_proto} . {Port(port)} : {markText}", $"mark {markText}"));
            var portChains = $"@{IngressSandboxTable.PortChainsMap}";
            var key = $"{markText} . {_proto} . {Port(port)}";
            if (!view.DispatchesByMark || view.ChainOf(mark, _proto, port) is not { } dispatch)
            {
                _steps.Add(new TraceStep(_sandbox, "ip mesh", "dispatch", view.DispatchesByMark ? $"meta mark . meta l4proto . th dport vmap {portChains}" : null, $"no element {key} in {portChains}: no backend to pick"));
                return Done(TraceVerdict.Refused, $"the service of mark {markText} has no backends for {_proto}/{Port(port)} (no running task with an ingress address; for traffic=local, none on this node): {delivered}");
            }

            _steps.Add(new TraceStep(_sandbox, "ip mesh", "dispatch", $"{portChains}: {key} : {dispatch.Verb} {dispatch.Chain}", $"{dispatch.Verb} {dispatch.Chain}"));
            var (rule, rules) = view.PickChain(dispatch.Chain, _proto, port);
            var service = rule?.Targets.Select(t => kernel.Tasks.GetValueOrDefault(t.Address)?.Service).FirstOrDefault(s => s is not null) ?? $"with mark {markText}";
            if (rule is null || rule.Targets.Count == 0)
            {
                _steps.Add(new TraceStep(_sandbox, "ip mesh", dispatch.Chain, rules == 0 ? null : "counter", rule is null
                    ? "no DNAT rule in the picking chain"
                    : $"no element for {_proto} . {Port(port)} in @{rule.Map}"));
                return Done(TraceVerdict.Refused, $"service {service}'s picking chain {dispatch.Chain} has no backend for {_proto}/{Port(port)}: {delivered}");
            }

            var selection = Selection(rule);
            _steps.Add(new TraceStep(_sandbox, "ip mesh", dispatch.Chain, $"{rule.Text} # handle {rule.Handle.ToString(CultureInfo.InvariantCulture)}",
                $"DNAT to one of {rule.Targets.Count.ToString(CultureInfo.InvariantCulture)} backends, {Short(rule)}"));
            if (rule.Mode == NftDnatRule.Jhash && System.Net.IPAddress.TryParse(request.From, out var client) && rule.Targets.FirstOrDefault(t => t.Index == Balancing.NftJhash.Bucket(client, (uint)rule.Modulus, rule.Seed) + rule.Offset) is { } picked)
            {
                _notes.Add(string.Create(CultureInfo.InvariantCulture, $"maglev: jhash of {client} is bucket {picked.Index}, so {client} goes to {picked.Address}{(picked.Port is { } p ? ":" + p.ToString(CultureInfo.InvariantCulture) : "")} through every node (the same table and seed everywhere)"));
            }

            if (rule.Modulus != rule.Targets.Count)
            {
                _notes.Add($"numgen mod {rule.Modulus.ToString(CultureInfo.InvariantCulture)} but the map has {rule.Targets.Count.ToString(CultureInfo.InvariantCulture)} entries: a number without an entry is not DNATed");
            }

            if (rule.KeepsClientAddress)
            {
                _steps.Add(new TraceStep(_sandbox, "ip mesh", "source-nat",
                    $"meta mark & {IngressSandboxTable.LocalTrafficMark} != 0 return",
                    "no SNAT (traffic=local): the task sees the client's address and replies through its own node (policy routing to this sandbox)"));
            }
            else if (view.SourceNat is { } snat)
            {
                _steps.Add(new TraceStep(_sandbox, "ip mesh", "source-nat",
                    $"oifname \"{NodeNetworkOptions.SandboxIngressInterface}\" ip daddr {snat.Prefix} ct status dnat snat to {snat.Address}",
                    $"SNAT to {snat.Address}: the task replies to this sandbox, which un-NATs back to the client"));
            }
            else
            {
                _notes.Add("the sandbox has no SNAT rule: a task's reply would not come back through this sandbox");
            }

            var candidates = Candidates(rule);
            var backends = new TraceBackendSet(service, markText, selection, candidates);
            if (candidates.All(c => c.TaskSide is not null && SideVerdict(c) == TraceVerdict.Dropped))
            {
                return Done(TraceVerdict.Dropped, $"every backend of {service} is on {kernel.Node} and its task drops {_proto}/{Port(candidates[0].Port)}", backends);
            }

            return Done(TraceVerdict.Forwarded, $"DNAT to one of {candidates.Count.ToString(CultureInfo.InvariantCulture)} {(rule.KeepsClientAddress ? "local " : "")}backends of service {service}, {Short(rule)}{(rule.KeepsClientAddress ? ", client address kept (traffic=local)" : "")}", backends);
        }

        /// <summary>
        /// The ipvs dataplane's sandbox (Docker's layout): mangle PREROUTING marks the published port, the IPVS fwmark
        /// service of that mark picks a real server (Masq, the packet keeps its port), nat POSTROUTING SNATs what IPVS
        /// sends on; the task REDIRECTs the published port to its target port.
        /// </summary>
        private TraceResult IpvsSandbox((string Address, int Port) leg)
        {
            var delivered = $"the connection is delivered to the sandbox itself ({leg.Address}:{Port(leg.Port)}), where nothing listens: {RefusedHow}";
            if (kernel.SandboxIpvs is not { } ipvs)
            {
                _steps.Add(new TraceStep(_sandbox, "", "", null, "the sandbox's mangle table and IPVS services could not be read"));
                return Done(TraceVerdict.Unsupported, $"the ipvs sandbox {kernel.SandboxNamespace} could not be read");
            }

            var mangle = IptablesSave.Parse(ipvs.Mangle);
            var packet = new TracedPacket(_proto, request.From, leg.Address, leg.Port, false, true, null);
            if (!mangle.Jumps.Any(j => j.Table == "mangle" && j.Chain == "PREROUTING" && IptablesRuleMatch.Option(j.Rule, "-j") == IpvsSandboxRules.MarkPorts))
            {
                _steps.Add(new TraceStep(_sandbox, "mangle", "PREROUTING", null, $"no rule jumps to {IpvsSandboxRules.MarkPorts}: nothing is marked"));
                return Done(TraceVerdict.Refused, $"the sandbox's mangle PREROUTING has no jump to {IpvsSandboxRules.MarkPorts} (the daemon has not converged?): {delivered}");
            }

            var markRule = FirstMatch(mangle, "mangle", IpvsSandboxRules.MarkPorts, packet);
            if (markRule is null || IpvsSandboxView.MarkOf(markRule) is not { } mark)
            {
                _steps.Add(new TraceStep(_sandbox, "mangle", IpvsSandboxRules.MarkPorts, markRule, $"no MARK rule for {_proto}/{Port(leg.Port)}: no mark"));
                return Done(TraceVerdict.Refused, $"{_proto}/{Port(leg.Port)} has no mark in the sandbox (the host rule and the sandbox disagree): {delivered}");
            }

            var markText = "0x" + mark.ToString("x8", CultureInfo.InvariantCulture);
            _steps.Add(new TraceStep(_sandbox, "mangle", IpvsSandboxRules.MarkPorts, markRule, $"mark {markText}"));
            var service = ipvs.Services.FirstOrDefault(s => s.FirewallMark == mark);
            if (service is null)
            {
                _steps.Add(new TraceStep(_sandbox, "ipvs", $"FWM {mark.ToString(CultureInfo.InvariantCulture)}", null, "no IPVS service for this mark"));
                return Done(TraceVerdict.Refused, $"no IPVS fwmark service {mark.ToString(CultureInfo.InvariantCulture)} ({markText}): {delivered}");
            }

            var fwm = $"FWM {mark.ToString(CultureInfo.InvariantCulture)} {service.Scheduler}";
            var active = service.RealServers.Where(r => r.Weight > 0).ToList();
            var draining = service.RealServers.Count - active.Count;
            if (draining > 0)
            {
                _notes.Add($"{draining.ToString(CultureInfo.InvariantCulture)} real server(s) have weight 0 (draining a removed task): they keep their connections and get no new one");
            }

            if (active.Count == 0)
            {
                _steps.Add(new TraceStep(_sandbox, "ipvs", fwm, $"-f {mark.ToString(CultureInfo.InvariantCulture)} -s {service.Scheduler}", "no real server with a weight above 0"));
                return Done(TraceVerdict.Refused, $"IPVS service FWM {mark.ToString(CultureInfo.InvariantCulture)} has no real server to send a new connection to (no running task): {delivered}");
            }

            var names = active.Select(r => kernel.Tasks.GetValueOrDefault(r.Address)?.Service).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
            var serviceName = names.Count == 1 ? names[0] : $"FWM {mark.ToString(CultureInfo.InvariantCulture)}";
            _steps.Add(new TraceStep(_sandbox, "ipvs", fwm,
                $"-f {mark.ToString(CultureInfo.InvariantCulture)} -s {service.Scheduler}: {string.Join(", ", service.RealServers.Select(r => $"{r.Address}:{Port(r.Port)} {r.Method} w{r.Weight.ToString(CultureInfo.InvariantCulture)}"))}",
                $"IPVS picks one of {active.Count.ToString(CultureInfo.InvariantCulture)} real servers ({service.Scheduler}); the packet keeps port {Port(leg.Port)}"));
            if (ipvs.SourceNat() is { } snat)
            {
                _steps.Add(new TraceStep(_sandbox, "nat", IpvsSandboxRules.SourceNat, snat.Rule, $"SNAT to {snat.Address}: the task replies to this sandbox, which un-NATs back to the client"));
            }
            else
            {
                _notes.Add("the sandbox has no SNAT for IPVS traffic: a task's reply would not come back through this sandbox");
            }

            var candidates = new List<TraceBackend>();
            var index = 0;
            foreach (var real in active)
            {
                var port = real.Port == 0 ? leg.Port : real.Port;
                kernel.Tasks.TryGetValue(real.Address, out var task);
                IReadOnlyList<TraceStep>? side = null;
                string? followUp = null;
                if (task?.Node == kernel.Node && kernel.LocalTaskRules.ContainsKey(real.Address))
                {
                    side = TaskSide(real.Address, port, task).Steps;
                }
                else if (task is not null)
                {
                    followUp = $"mesh trace --node {task.Node} {_proto} {real.Address}:{Port(port)}";
                }
                else
                {
                    _notes.Add($"{real.Address} is no task the store knows: a stale real server, or the store changed since the kernel was written");
                }

                candidates.Add(new TraceBackend(index++, real.Address, port, real.Weight, task?.Name, task?.Node, null, side, followUp));
            }

            var selection = service.Scheduler switch
            {
                "rr" => $"round robin (IPVS rr): each new connection to mark {markText} takes the next of the {active.Count.ToString(CultureInfo.InvariantCulture)} real servers with a weight above 0",
                "wrr" => "weighted round robin (IPVS wrr), by the weights shown",
                "mh" => "Maglev hashing (IPVS mh) of the source: a client keeps its real server while the set is unchanged",
                var other => $"IPVS scheduler {other}",
            };
            var backends = new TraceBackendSet(serviceName, markText, selection, candidates);
            if (candidates.All(c => c.TaskSide is not null && SideVerdict(c) == TraceVerdict.Dropped))
            {
                return Done(TraceVerdict.Dropped, $"every backend of {serviceName} is on {kernel.Node} and its task drops {_proto}/{Port(candidates[0].Port)}", backends);
            }

            return Done(TraceVerdict.Forwarded, $"IPVS sends it to one of {candidates.Count.ToString(CultureInfo.InvariantCulture)} real servers of service {serviceName}, {service.Scheduler}", backends);
        }

        private TraceVerdict SideVerdict(TraceBackend backend) =>
            TaskSide(backend.Address, backend.Port, kernel.Tasks[backend.Address]).Verdict;

        private List<TraceBackend> Candidates(NftDnatRule rule)
        {
            var slots = rule.Targets.GroupBy(t => (t.Address, t.Port)).ToList();
            var list = new List<TraceBackend>();
            var readLocal = 0;
            foreach (var slot in slots)
            {
                var first = slot.First();
                var port = first.Port ?? request.Port;
                kernel.Tasks.TryGetValue(first.Address, out var task);
                IReadOnlyList<TraceStep>? side = null;
                string? followUp = null;
                if (task?.Node == kernel.Node && kernel.LocalTaskRules.ContainsKey(first.Address))
                {
                    side = TaskSide(first.Address, port, task).Steps;
                    readLocal++;
                }
                else if (task is not null)
                {
                    followUp = $"mesh trace --node {task.Node} {_proto} {first.Address}:{Port(port)}";
                }
                else
                {
                    _notes.Add($"{first.Address} is no task the store knows: a stale backend, or the store changed since the kernel was written");
                }

                // Health: none exists yet. A health source fills this in, and an unhealthy candidate is reported as skipped.
                list.Add(new TraceBackend(first.Index, first.Address, port, slot.Count(), task?.Name, task?.Node, null, side, followUp));
            }

            var localUnread = list.Count(b => b.Node == kernel.Node && b.TaskSide is null);
            if (localUnread > 0)
            {
                _notes.Add($"the task rules of {localUnread.ToString(CultureInfo.InvariantCulture)} local candidate(s) were not read (trace one by its address)");
            }

            return list;
        }

        /// <summary>The far side, inside a task on this node: the nat REDIRECT (the ipvs dataplane keeps the published port) and filter INPUT.</summary>
        private (IReadOnlyList<TraceStep> Steps, TraceVerdict Verdict, string Reason) TaskSide(string address, int port, TracedTask task)
        {
            var where = $"task {task.Name} on {task.Node}";
            if (!kernel.LocalTaskRules.TryGetValue(address, out var text))
            {
                return ([new TraceStep(where, "", "", null, "its namespace's rules could not be read")], TraceVerdict.Unsupported, $"the rules of task {task.Name} could not be read");
            }

            var steps = new List<TraceStep>();
            var save = IptablesSave.Parse(text);
            var packet = new TracedPacket(_proto, null, address, port, false, true, null);
            var redirect = save.Jumps.Any(j => j.Table == "nat" && j.Chain == "PREROUTING" && IptablesRuleMatch.Option(j.Rule, "-j") == TaskRules.Redirect)
                ? FirstMatch(save, "nat", TaskRules.Redirect, packet)
                : null;
            if (redirect is not null && IptablesRuleMatch.Option(redirect, "-j") == "REDIRECT"
                && int.TryParse(IptablesRuleMatch.Option(redirect, "--to-ports"), NumberStyles.None, CultureInfo.InvariantCulture, out var to))
            {
                steps.Add(new TraceStep(where, "nat", TaskRules.Redirect, redirect, $"REDIRECT to port {Port(to)}"));
                packet = packet with { DestinationPort = to };
            }

            var input = save.Jumps.Any(j => j.Table == "filter" && j.Chain == "INPUT" && IptablesRuleMatch.Option(j.Rule, "-j") == TaskRules.Input)
                ? FirstMatch(save, "filter", TaskRules.Input, packet)
                : null;
            var target = input is null ? null : IptablesRuleMatch.Option(input, "-j");
            var at = $"{address}:{Port(packet.DestinationPort)}";
            if (target == "DROP")
            {
                steps.Add(new TraceStep(where, "filter", TaskRules.Input, input, "DROP: the port is not one the task's service targets"));
                return (steps, TraceVerdict.Dropped, $"task {task.Name} on {task.Node} drops {_proto} to {at}: not a target port of service {task.Service}");
            }

            steps.Add(new TraceStep(where, "filter", TaskRules.Input, input, target == "ACCEPT"
                ? $"ACCEPT: delivered to the task's listener on {at}"
                : $"no Mesh rule decides; the task's INPUT policy ({Policy(text, "filter", "INPUT") ?? "ACCEPT"}) applies"));
            var verdict = target == "ACCEPT" || Policy(text, "filter", "INPUT") is null or "ACCEPT" ? TraceVerdict.Forwarded : TraceVerdict.Dropped;
            return (steps, verdict, verdict == TraceVerdict.Forwarded
                ? $"task {task.Name} of service {task.Service} on {task.Node} accepts {_proto} on {at}"
                : $"task {task.Name} on {task.Node} drops {_proto} to {at} (INPUT policy)");
        }

        private static string Short(NftDnatRule rule) => rule.Mode switch
        {
            NftDnatRule.Jhash => "by the client's address (maglev: jhash ip saddr)",
            "inc" => "round robin (numgen inc)",
            "random" => "at random (numgen random)",
            _ => $"numgen {rule.Mode}",
        };

        private static string Selection(NftDnatRule rule) => rule.Mode switch
        {
            NftDnatRule.Jhash => $"by the client's address: jhash ip saddr mod {rule.Modulus.ToString(CultureInfo.InvariantCulture)} picks a bucket of a Maglev table (each backend's weight is its number of buckets); a client keeps its backend, and a backend leaving moves only its own clients",
            "inc" => $"round robin: numgen inc mod {rule.Modulus.ToString(CultureInfo.InvariantCulture)} keeps one counter for the picking chain (shared by every published port with {rule.Modulus.ToString(CultureInfo.InvariantCulture)} backends), and the k-th new connection through it (to any of those ports, from any client) takes slot k mod {rule.Modulus.ToString(CultureInfo.InvariantCulture)}; which one the next connection gets depends on the connections before it",
            "random" => $"at random: numgen random mod {rule.Modulus.ToString(CultureInfo.InvariantCulture)} draws an entry per new connection",
            _ => $"numgen {rule.Mode} mod {rule.Modulus.ToString(CultureInfo.InvariantCulture)}",
        };

        private string? FirstMatch(IptablesSave save, string table, string chain, TracedPacket packet)
        {
            foreach (var rule in save.OwnedChains.GetValueOrDefault((table, chain)) ?? [])
            {
                if (Match(rule, packet, table, chain) == IptablesMatch.Matches)
                {
                    return rule;
                }
            }

            return null;
        }

        private IptablesMatch Match(string rule, TracedPacket packet, string table, string chain)
        {
            var result = IptablesRuleMatch.Evaluate(rule, packet);
            if (result == IptablesMatch.Unknown)
            {
                _notes.Add($"not evaluated (a match the trace does not know), taken as not matching: {table} {chain} {rule}");
            }

            return result;
        }

        private TraceResult Done(TraceVerdict verdict, string reason, TraceBackendSet? backends = null) =>
            new(kernel.Node, kernel.Dataplane, _proto, request.Address, request.Port, request.From, _steps, backends, verdict, reason, _notes.Distinct().ToArray());

        private string RefusedHow => _proto == "tcp" ? "refused (TCP reset)" : "refused (ICMP port unreachable)";

        private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

        private static (string Address, int Port)? Endpoint(string? text)
        {
            var colon = text?.LastIndexOf(':') ?? -1;
            return colon > 0 && int.TryParse(text![(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port)
                ? (text[..colon], port)
                : null;
        }

        /// <summary>A built-in chain's policy from iptables-save (<c>:FORWARD DROP [0:0]</c>).</summary>
        private static string? Policy(string save, string table, string chain)
        {
            string? current = null;
            foreach (var line in save.Split('\n'))
            {
                if (line.StartsWith('*'))
                {
                    current = line[1..].Trim();
                }
                else if (current == table && line.StartsWith($":{chain} ", StringComparison.Ordinal))
                {
                    return line.Split(' ')[1];
                }
            }

            return null;
        }
    }
}
