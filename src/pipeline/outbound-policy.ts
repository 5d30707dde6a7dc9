import dns, { type LookupAddress, type LookupAllOptions } from 'node:dns';
import net, { type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { buildConnector } from 'undici';

/**
 * Which addresses an outbound connection (image download or webhook, every redirect hop
 * included) may be opened to. The address is judged at connect time, inside the undici
 * dispatcher, on the very address the socket is about to use: a check made on the URL
 * beforehand could be bypassed by DNS rebinding (public on the first lookup, 127.0.0.1 on
 * the second) or by a redirect to a private host.
 */

export interface AddressClass {
  /** Reachable without ALLOW_PRIVATE_NETWORKS: a public unicast address. */
  public: boolean;
  /** ipaddr.js range name of the address judged (`unicast` for a public one). */
  range: string;
  /** The IPv4 address judged in place of an IPv6 form that embeds it, else null. */
  embedded: string | null;
  /** Readable class, e.g. `a loopback address`. */
  description: string;
}

const DESCRIPTIONS: Record<string, string> = {
  unicast: 'a public address',
  invalid: 'an unparseable address',
  unspecified: 'an unspecified address',
  broadcast: 'a broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT (shared) address',
  private: 'a private address',
  reserved: 'a reserved (documentation, benchmarking or future use) address',
  benchmarking: 'a benchmarking address',
  uniqueLocal: 'a unique-local address',
  deprecatedSiteLocal: 'a site-local address',
  discard: 'a discard-only address',
  rfc6052: 'a local-use NAT64 address',
  '6to4': 'a 6to4 address',
  teredo: 'a Teredo address',
};

/** The only IPv6 block IANA hands out for global unicast; ipaddr.js calls all the rest `unicast` too. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');
/** NAT64 well-known prefix: a gateway translates to the embedded IPv4, so that is the destination. */
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');

function describe(range: string, embedded: string | null): AddressClass {
  return {
    public: range === 'unicast',
    range,
    embedded,
    description: DESCRIPTIONS[range] ?? `a non-public (${range}) address`,
  };
}

/**
 * Classifies an IP address (as a resolver returns it or as a URL spells it, without
 * brackets). Only ipaddr.js's `unicast` is public. IPv6 forms whose destination is an
 * embedded IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d and
 * NAT64 64:ff9b::a.b.c.d) are judged by that IPv4 address, since that is what the socket
 * reaches; 6to4 and Teredo tunnel to an address they embed and are refused outright.
 * Anything that does not parse is refused.
 */
export function classifyAddress(address: string): AddressClass {
  if (!ipaddr.isValid(address)) return describe('invalid', null);
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv4') return describe(parsed.range(), null);
  const v6 = parsed as ipaddr.IPv6;
  const range = v6.range();
  if (range === 'ipv4Mapped' || range === 'rfc6145' || v6.match(NAT64_WELL_KNOWN)) {
    const [a = 0, b = 0] = v6.parts.slice(6);
    const v4 = new ipaddr.IPv4([a >> 8, a & 0xff, b >> 8, b & 0xff]);
    return describe(v4.range(), v4.toString());
  }
  if (range === 'unicast' && !v6.match(GLOBAL_UNICAST_V6)) return describe('reserved', null);
  return describe(range, null);
}

/** Refusal of an outbound connection; final, so retrying it is pointless. */
export class OutboundRefusedError extends Error {
  readonly code = 'ERR_OUTBOUND_REFUSED';

  constructor(
    readonly address: string,
    readonly addressClass: AddressClass,
    hostname?: string,
  ) {
    const subject =
      hostname !== undefined && hostname !== address ? `${hostname} (${address})` : address;
    const what = addressClass.embedded
      ? `embeds ${addressClass.embedded}, ${addressClass.description}`
      : `is ${addressClass.description}`;
    super(
      `refused: ${subject} ${what} (set ALLOW_PRIVATE_NETWORKS=true or OUTBOUND_ALLOWLIST to allow)`,
    );
    this.name = 'OutboundRefusedError';
  }
}

/**
 * `host:port` as the allow list stores it: the host normalised the way a URL normalises
 * it (lower case, IPv4 in dotted decimal, IPv6 compressed and bracketed), so an entry
 * matches however the CSV spelled the same host.
 */
export function hostPortKey(host: string, port: number): string {
  const bracketed = net.isIPv6(host) ? `[${host}]` : host;
  return `${new URL(`http://${bracketed}/`).hostname}:${port}`;
}

const ENTRY = /^(\[[0-9a-fA-F:.]+\]|[^\s:/?#@[\]]+):(\d{1,5})$/;

/** One OUTBOUND_ALLOWLIST entry, normalised; throws with the reason when malformed. */
export function parseAllowlistEntry(entry: string): string {
  const match = ENTRY.exec(entry);
  const port = Number(match?.[2]);
  if (!match?.[1] || port < 1 || port > 65535) {
    throw new Error(
      `entry "${entry}" must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:8080, images.internal:443 or [::1]:8080`,
    );
  }
  try {
    return hostPortKey(match[1].replace(/^\[(.*)\]$/, '$1'), port);
  } catch {
    throw new Error(`entry "${entry}" has an invalid host`);
  }
}

/** OUTBOUND_ALLOWLIST: comma-separated `host:port` entries; blanks between commas are skipped. */
export function parseAllowlist(raw: string): string[] {
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  return [...new Set(entries.map(parseAllowlistEntry))];
}

/** Resolves every address of a host, as `dns.lookup` with `all: true` does. */
export type Resolver = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export interface OutboundPolicyOptions {
  allowPrivateNetworks: boolean;
  /** Normalised `host:port` entries (see `parseAllowlist`) reached without any address check. */
  allowlist: readonly string[];
  /** Name resolution; tests substitute one to check refusals without touching DNS. */
  resolve?: Resolver;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

export class OutboundPolicy {
  readonly allowPrivateNetworks: boolean;
  private readonly allowlist: ReadonlySet<string>;
  private readonly resolve: Resolver;

  constructor(options: OutboundPolicyOptions) {
    this.allowPrivateNetworks = options.allowPrivateNetworks;
    this.allowlist = new Set(options.allowlist);
    this.resolve = options.resolve ?? ((host, opts, callback) => dns.lookup(host, opts, callback));
  }

  /**
   * The one check site: every address an outbound socket is about to connect to passes
   * here, whether it came from DNS or was written in the URL. Null when it may be reached.
   */
  check(address: string, hostname?: string): OutboundRefusedError | null {
    const found = classifyAddress(address);
    return found.public ? null : new OutboundRefusedError(address, found, hostname);
  }

  /** Whether a connection to this URL host and port skips the address check. */
  isExempt(hostname: string, port: string, protocol: string): boolean {
    if (this.allowPrivateNetworks) return true;
    if (this.allowlist.size === 0) return false;
    const effectivePort = port === '' ? DEFAULT_PORTS[protocol] : Number(port);
    return effectivePort !== undefined && this.allowlist.has(hostPortKey(hostname, effectivePort));
  }

  /**
   * A `net.connect` lookup that resolves every address of the host and refuses the
   * connection when ANY of them is not public, so a host answering with one public and one
   * private address cannot have the socket pick the private one.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, '');
        return;
      }
      for (const { address } of addresses) {
        const refusal = this.check(address, hostname);
        if (refusal) {
          callback(refusal, '');
          return;
        }
      }
      const first = addresses[0];
      if (options.all) callback(null, addresses);
      else if (first) callback(null, first.address, first.family);
      else
        callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
    });
  };

  /**
   * An undici connector enforcing the policy on every connection the dispatcher opens,
   * and so on every redirect hop. Node's net.connect skips `lookup` for an IP literal, so
   * those are checked here before any socket exists.
   */
  connector(options: buildConnector.BuildOptions): buildConnector.connector {
    const exempt = buildConnector(options);
    const checked = buildConnector({ ...options, lookup: this.lookup });
    return (opts, callback) => {
      if (this.isExempt(opts.hostname, opts.port, opts.protocol)) {
        exempt(opts, callback);
        return;
      }
      if (net.isIP(opts.hostname) !== 0) {
        const refusal = this.check(opts.hostname);
        if (refusal) {
          // Asynchronously, as a real connection failure would be reported.
          process.nextTick(() => callback(refusal, null));
          return;
        }
      }
      checked(opts, callback);
    };
  }
}
