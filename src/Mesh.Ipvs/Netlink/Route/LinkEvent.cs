namespace Mesh.Ipvs.Netlink.Route;

/// <summary>A change the kernel reported to a <see cref="LinkWatch"/>, in the order it happened.</summary>
public abstract record LinkEvent;

/// <summary>RTM_NEWLINK: the link was created or changed (master, name, state...); <see cref="Link"/> is all of it now.</summary>
public sealed record LinkChanged(Link Link) : LinkEvent;

/// <summary>RTM_DELLINK: the link with this ifindex is gone.</summary>
public sealed record LinkDeleted(int Index, string Name) : LinkEvent;

/// <summary>
/// RTM_DELNSID: the namespace this id named in the watching namespace was freed (its links with it); the kernel may
/// give the id to another namespace after this, never before.
/// </summary>
public sealed record NetnsIdDeleted(int Id) : LinkEvent;
