using System.Net.Security;
using System.Security.Authentication;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Http.Tls;

/// <summary>
/// The HTTPS entry's certificates, live: scanned from <c>--certs-dir</c> at start, then again a moment after any
/// change in the directory (inotify through FileSystemWatcher; the short settle time lets a tool write a .crt and its
/// .key before they are read together) and once a minute in case an event was lost (an inotify overflow, a directory
/// mounted over). A scan swaps in a whole new immutable set: handshakes after it see the new certificates, open
/// connections keep the session they negotiated.
/// </summary>
public sealed partial class CertificateStore : IDisposable
{
    public static readonly TimeSpan DefaultSettle = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Rescan = TimeSpan.FromMinutes(1);

    private readonly string _directory;
    private readonly ILogger<CertificateStore> _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _settle;
    private readonly Lock _scanning = new();
    private readonly Timer _timer;
    private FileSystemWatcher? _watcher;
    private volatile HostCertificates _current = HostCertificates.Empty;
    private long _scans;
    private int _dirty;

    public CertificateStore(string directory, ILogger<CertificateStore> logger, TimeProvider? time = null, TimeSpan? settle = null)
    {
        _directory = directory;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _settle = settle ?? DefaultSettle;
        _timer = new Timer(_ => Reload(), null, Timeout.Infinite, Timeout.Infinite);
    }

    public string Directory => _directory;

    public HostCertificates Current => _current;

    /// <summary>How many scans have finished (tests wait on it).</summary>
    public long Scans => Interlocked.Read(ref _scans);

    /// <summary>Scans once and watches the directory from then on.</summary>
    public void Start()
    {
        Reload();
        _watcher = new FileSystemWatcher(_directory)
        {
            IncludeSubdirectories = false,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.Attributes,
        };
        _watcher.Changed += (_, _) => Soon();
        _watcher.Created += (_, _) => Soon();
        _watcher.Deleted += (_, _) => Soon();
        _watcher.Renamed += (_, _) => Soon();
        _watcher.Error += (_, e) =>
        {
            LogWatchError(e.GetException(), _directory);
            Soon();
        };
        _watcher.EnableRaisingEvents = true;
        _timer.Change(Rescan, Rescan);
    }

    /// <summary>Scans the directory now and swaps in what it found.</summary>
    public void Reload()
    {
        lock (_scanning)
        {
            Interlocked.Exchange(ref _dirty, 0);
            try
            {
                var (certificates, changes) = CertificateDirectory.Scan(_directory, _current, _time.GetUtcNow());
                foreach (var change in changes)
                {
                    switch (change.Kind)
                    {
                        case CertificateChangeKind.Refused:
                            LogRefused(change.File, change.Detail);
                            break;
                        case CertificateChangeKind.Removed:
                            LogRemoved(change.Host, change.File);
                            break;
                        default:
                            LogLoaded(change.Host, change.File, change.Detail);
                            break;
                    }
                }

                _current = certificates;
                if (changes.Count > 0)
                {
                    LogServing(certificates.ByHost.Count, _directory);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogScanFailed(e, _directory);
            }
            finally
            {
                Interlocked.Increment(ref _scans);
                // A change seen while this scan ran may have been missed by it: scan again after it settles.
                _timer.Change(Volatile.Read(ref _dirty) != 0 ? _settle : Rescan, Rescan);
            }
        }
    }

    /// <summary>
    /// The TLS settings for one client hello: its SNI name's certificate, HTTP/2 and HTTP/1.1 offered by ALPN (h2
    /// first). No certificate for the name (or no SNI) fails the handshake: presenting another host's certificate would
    /// only move the error to the client and tell it which names this node serves.
    /// </summary>
    public SslServerAuthenticationOptions OptionsFor(string? serverName)
    {
        var certificate = _current.Select(serverName) ?? throw new AuthenticationException($"no certificate for SNI name '{Discovery.Model.Validate.Printable(serverName)}' in {_directory}");
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = certificate.Context,
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
            ClientCertificateRequired = false,
        };
    }

    private void Soon()
    {
        Interlocked.Exchange(ref _dirty, 1);
        _timer.Change(_settle, Rescan);
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _timer.Dispose();
    }
}
