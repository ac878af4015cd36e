using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mesh.Discovery.Store.Etcd.Gateway;

// The subset of etcd's v3 API (api/etcdserverpb/rpc.proto) spoken through its JSON gateway. The gateway
// writes proto field names (snake_case), int64 as strings, bytes as base64, and omits default values
// (false, 0, empty), so every field here is optional.

internal static class EtcdJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.General)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowReadingFromString | JsonNumberHandling.WriteAsString,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    };

    public static string Base64(string key) => Convert.ToBase64String(Encoding.UTF8.GetBytes(key));

    public static string Text(string? base64) => base64 is null ? "" : Encoding.UTF8.GetString(Convert.FromBase64String(base64));

    /// <summary>The smallest key greater than every key starting with <paramref name="prefix"/> (clientv3.GetPrefixRangeEnd).</summary>
    public static string PrefixEnd(string prefix)
    {
        var bytes = Encoding.UTF8.GetBytes(prefix);
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            if (bytes[i] < 0xff)
            {
                bytes[i]++;
                return Convert.ToBase64String(bytes.AsSpan(0, i + 1));
            }
        }

        return Convert.ToBase64String([0]);
    }
}

internal sealed class ResponseHeader
{
    public long Revision { get; set; }
    public ulong MemberId { get; set; }
    public ulong ClusterId { get; set; }
    public long RaftTerm { get; set; }
}

internal sealed class KeyValue
{
    public string? Key { get; set; }
    public long CreateRevision { get; set; }
    public long ModRevision { get; set; }
    public long Version { get; set; }
    public string? Value { get; set; }
    public long Lease { get; set; }
}

internal sealed class RangeRequest
{
    public string? Key { get; set; }
    public string? RangeEnd { get; set; }
    public bool CountOnly { get; set; }
}

internal sealed class RangeResponse
{
    public ResponseHeader? Header { get; set; }
    public List<KeyValue>? Kvs { get; set; }
    public long Count { get; set; }
    public bool More { get; set; }
}

internal sealed class PutRequest
{
    public string? Key { get; set; }
    public string? Value { get; set; }
    public long Lease { get; set; }
}

internal sealed class DeleteRangeRequest
{
    public string? Key { get; set; }
    public string? RangeEnd { get; set; }
}

internal sealed class Compare
{
    public string? Key { get; set; }
    public string? RangeEnd { get; set; }
    public string Target { get; set; } = "MOD";
    public string Result { get; set; } = "EQUAL";

    [JsonIgnore]
    public long ModRevision { get; set; }

    // MOD compare against 0 must be sent explicitly ("key does not exist yet"), which WhenWritingDefault would drop.
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    [JsonPropertyName("mod_revision")]
    public string ModRevisionText => ModRevision.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

internal sealed class RequestOp
{
    public RangeRequest? RequestRange { get; set; }
    public PutRequest? RequestPut { get; set; }
    public DeleteRangeRequest? RequestDeleteRange { get; set; }
}

internal sealed class TxnRequest
{
    public List<Compare> Compare { get; set; } = [];
    public List<RequestOp> Success { get; set; } = [];
    public List<RequestOp> Failure { get; set; } = [];
}

internal sealed class ResponseOp
{
    public RangeResponse? ResponseRange { get; set; }
}

internal sealed class TxnResponse
{
    public ResponseHeader? Header { get; set; }
    public bool Succeeded { get; set; }
    public List<ResponseOp>? Responses { get; set; }
}

internal sealed class CompactionRequest
{
    public long Revision { get; set; }
    public bool Physical { get; set; }
}

internal sealed class LeaseGrantRequest
{
    [JsonPropertyName("TTL")]
    public long Ttl { get; set; }
}

internal sealed class LeaseGrantResponse
{
    public ResponseHeader? Header { get; set; }

    [JsonPropertyName("ID")]
    public long Id { get; set; }

    [JsonPropertyName("TTL")]
    public long Ttl { get; set; }

    public string? Error { get; set; }
}

internal sealed class LeaseIdRequest
{
    [JsonPropertyName("ID")]
    public long Id { get; set; }
}

internal sealed class StreamEnvelope<T>
{
    public T? Result { get; set; }
    public GatewayError? Error { get; set; }
}

internal sealed class LeaseKeepAliveResponse
{
    public ResponseHeader? Header { get; set; }

    [JsonPropertyName("ID")]
    public long Id { get; set; }

    [JsonPropertyName("TTL")]
    public long Ttl { get; set; }
}

internal sealed class StatusResponse
{
    public ResponseHeader? Header { get; set; }
    public string? Version { get; set; }
    public ulong Leader { get; set; }
}

internal sealed class WatchCreateRequest
{
    public string? Key { get; set; }
    public string? RangeEnd { get; set; }
    public long StartRevision { get; set; }
    public bool ProgressNotify { get; set; }
}

internal sealed class WatchRequest
{
    public WatchCreateRequest? CreateRequest { get; set; }
}

internal sealed class WatchEvent
{
    /// <summary>"PUT" is the default and therefore omitted by the gateway; "DELETE" is spelled out.</summary>
    public string? Type { get; set; }
    public KeyValue? Kv { get; set; }
}

internal sealed class WatchResponse
{
    public ResponseHeader? Header { get; set; }
    public long WatchId { get; set; }
    public bool Created { get; set; }
    public bool Canceled { get; set; }
    public long CompactRevision { get; set; }
    public string? CancelReason { get; set; }
    public List<WatchEvent>? Events { get; set; }
}

/// <summary>A non-2xx answer of the gateway: the gRPC status code and message.</summary>
internal sealed class GatewayError
{
    public string? Error { get; set; }
    public int Code { get; set; }
    public string? Message { get; set; }
}
