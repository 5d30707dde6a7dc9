import dns, { type LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t from 'tap';
import { type Dispatcher, request } from 'undici';
import { createOutboundDispatcher } from '../../src/pipeline/download.js';
import {
  classifyAddress,
  OutboundPolicy,
  OutboundRefusedError,
  parseAllowlist,
  parseAllowlistEntry,
  type Resolver,
} from '../../src/pipeline/outbound-policy.js';

// Pure classification: nothing here opens a socket, so non-loopback addresses are safe.
t.test('classifyAddress: only public unicast passes, for every address class', async (t) => {
  // [address, ipaddr.js range judged, embedded IPv4 judged in its place]
  const refused: Array<[string, string, string?]> = [
    // IPv4
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['169.254.0.1', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.254', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.51.100.7', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.1', 'reserved'],
    ['240.0.0.1', 'reserved'],
    // IPv6
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fe80::1%eth0', 'linkLocal'],
    ['febf::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456:789a::1', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
    ['ff05::2', 'multicast'],
    ['fec0::1', 'deprecatedSiteLocal'],
    ['100::1', 'discard'],
    ['2001:db8::1', 'reserved'],
    ['2001:2::1', 'benchmarking'],
    ['2001::1', 'teredo'],
    ['2002:a00:1::', '6to4'],
    ['2002:808:808::1', '6to4'],
    ['64:ff9b:1::a00:1', 'rfc6052'],
    // IPv4-compatible (deprecated) and unallocated space outside 2000::/3
    ['::7f00:1', 'reserved'],
    ['4000::1', 'reserved'],
    // IPv6 forms that embed an IPv4 address: judged by that address
    ['::ffff:127.0.0.1', 'loopback', '127.0.0.1'],
    ['::ffff:7f00:1', 'loopback', '127.0.0.1'],
    ['::ffff:10.0.0.1', 'private', '10.0.0.1'],
    ['::ffff:169.254.169.254', 'linkLocal', '169.254.169.254'],
    ['::ffff:0.0.0.0', 'unspecified', '0.0.0.0'],
    ['::ffff:100.64.0.1', 'carrierGradeNat', '100.64.0.1'],
    ['::ffff:0:7f00:1', 'loopback', '127.0.0.1'],
    ['64:ff9b::a00:1', 'private', '10.0.0.1'],
    ['64:ff9b::7f00:1', 'loopback', '127.0.0.1'],
    // Not an address at all
    ['localhost', 'invalid'],
    ['', 'invalid'],
  ];
  for (const [address, range, embedded] of refused) {
    const found = classifyAddress(address);
    t.match(
      found,
      { public: false, range, embedded: embedded ?? null },
      `${address || '(empty)'} is refused as ${range}`,
    );
    t.match(found.description, /^an? .*address$/, `${address} has a readable description`);
  }

  const allowed: Array<[string, string?]> = [
    ['8.8.8.8'],
    ['1.1.1.1'],
    ['93.184.216.34'],
    ['172.32.0.1'],
    ['100.128.0.1'],
    ['2606:4700:4700::1111'],
    ['2a00:1450:4001:80b::200e'],
    ['::ffff:8.8.8.8', '8.8.8.8'],
    ['64:ff9b::808:808', '8.8.8.8'],
  ];
  for (const [address, embedded] of allowed) {
    t.match(
      classifyAddress(address),
      { public: true, range: 'unicast', embedded: embedded ?? null },
      `${address} is public`,
    );
  }
});

t.test('the refusal reads as a reason and names the way out', async (t) => {
  const policy = new OutboundPolicy({ allowPrivateNetworks: false, allowlist: [] });
  t.equal(policy.check('8.8.8.8'), null);
  const cases: Array<[string, string | undefined, string]> = [
    [
      '127.0.0.1',
      undefined,
      'refused: 127.0.0.1 is a loopback address (set ALLOW_PRIVATE_NETWORKS=true or OUTBOUND_ALLOWLIST to allow)',
    ],
    [
      '127.0.0.1',
      'localhost',
      'refused: localhost (127.0.0.1) is a loopback address (set ALLOW_PRIVATE_NETWORKS=true or OUTBOUND_ALLOWLIST to allow)',
    ],
    [
      '::ffff:7f00:1',
      undefined,
      'refused: ::ffff:7f00:1 embeds 127.0.0.1, a loopback address (set ALLOW_PRIVATE_NETWORKS=true or OUTBOUND_ALLOWLIST to allow)',
    ],
    [
      '169.254.169.254',
      'metadata.internal',
      'refused: metadata.internal (169.254.169.254) is a link-local address (set ALLOW_PRIVATE_NETWORKS=true or OUTBOUND_ALLOWLIST to allow)',
    ],
  ];
  for (const [address, hostname, message] of cases) {
    const refusal = policy.check(address, hostname);
    t.type(refusal, OutboundRefusedError);
    t.match(refusal, { message, code: 'ERR_OUTBOUND_REFUSED', name: 'OutboundRefusedError' });
  }
});

t.test('OUTBOUND_ALLOWLIST parsing', async (t) => {
  const valid: Array<[string, string]> = [
    ['127.0.0.1:8080', '127.0.0.1:8080'],
    ['Images.Internal:443', 'images.internal:443'],
    ['[::1]:8080', '[::1]:8080'],
    ['[::FFFF:127.0.0.1]:80', '[::ffff:7f00:1]:80'],
    ['[0:0:0:0:0:0:0:1]:1', '[::1]:1'],
    ['localhost:65535', 'localhost:65535'],
    ['cdn-1.example.test:8443', 'cdn-1.example.test:8443'],
  ];
  for (const [entry, key] of valid) t.equal(parseAllowlistEntry(entry), key, entry);

  const invalid = [
    '127.0.0.1',
    'localhost',
    ':8080',
    'host:',
    'host:0',
    'host:65536',
    'host:123456',
    'host:80a',
    '::1:8080',
    '[::1]',
    '[nonsense]:80',
    'http://host:80',
    'host:80/path',
    'user@host:80',
    'two words:80',
  ];
  for (const entry of invalid) {
    t.throws(() => parseAllowlistEntry(entry), { message: /host:port|invalid host/ }, entry);
  }

  t.same(
    parseAllowlist(' 127.0.0.1:8080 , images.internal:443,,[::1]:9000, 127.0.0.1:8080 '),
    ['127.0.0.1:8080', 'images.internal:443', '[::1]:9000'],
    'trimmed, blanks skipped, duplicates dropped',
  );
  t.same(parseAllowlist(''), []);
  t.throws(() => parseAllowlist('127.0.0.1:8080,oops'), { message: /entry "oops"/ });
});

t.test('isExempt matches the URL host:port, with default ports', async (t) => {
  const policy = new OutboundPolicy({
    allowPrivateNetworks: false,
    allowlist: parseAllowlist('127.0.0.1:8080,images.internal:443,plain.internal:80,[::1]:9000'),
  });
  const cases: Array<[string, string, string, boolean]> = [
    ['127.0.0.1', '8080', 'http:', true],
    ['127.0.0.1', '8081', 'http:', false],
    ['localhost', '8080', 'http:', false],
    ['images.internal', '', 'https:', true],
    ['images.internal', '', 'http:', false],
    ['plain.internal', '', 'http:', true],
    ['::1', '9000', 'http:', true],
    ['0:0::1', '9000', 'http:', true],
  ];
  for (const [hostname, port, protocol, exempt] of cases) {
    t.equal(policy.isExempt(hostname, port, protocol), exempt, `${protocol}//${hostname}:${port}`);
  }
  const open = new OutboundPolicy({ allowPrivateNetworks: true, allowlist: [] });
  t.equal(open.isExempt('10.0.0.1', '80', 'http:'), true, 'ALLOW_PRIVATE_NETWORKS exempts all');
});

/**
 * A resolver answering from a fixed table (other names go to the system resolver, which
 * the tests only ask about `localhost`), counting the questions per name.
 */
function fakeResolver(table: Record<string, string[]>): Resolver & { calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const resolve: Resolver = (hostname, options, callback) => {
    calls.set(hostname, (calls.get(hostname) ?? 0) + 1);
    const answer = table[hostname];
    if (answer === undefined) {
      dns.lookup(hostname, options, callback);
      return;
    }
    const addresses: LookupAddress[] = answer.map((address) => ({
      address,
      family: address.includes(':') ? 6 : 4,
    }));
    process.nextTick(() => {
      if (addresses.length === 0) {
        callback(
          Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }),
          [],
        );
      } else {
        callback(null, addresses);
      }
    });
  };
  return Object.assign(resolve, { calls });
}

type LookupResult = { err: NodeJS.ErrnoException | null; address: unknown; family?: number };

function lookup(policy: OutboundPolicy, hostname: string, all: boolean): Promise<LookupResult> {
  return new Promise((resolve) => {
    policy.lookup(hostname, { all }, (err, address, family) => resolve({ err, address, family }));
  });
}

// The lookup is only called here, never handed to a socket, so public answers are safe.
t.test('lookup refuses when ANY resolved address is not public', async (t) => {
  const resolve = fakeResolver({
    'public.test': ['8.8.8.8', '2606:4700:4700::1111'],
    'mixed.test': ['8.8.8.8', '10.0.0.1'],
    'mixed6.test': ['2606:4700:4700::1111', 'fd00::1'],
    'metadata.test': ['169.254.169.254'],
    'nowhere.test': [],
  });
  const policy = new OutboundPolicy({ allowPrivateNetworks: false, allowlist: [], resolve });

  t.match(await lookup(policy, 'public.test', true), {
    err: null,
    address: [{ address: '8.8.8.8' }, { address: '2606:4700:4700::1111' }],
  });
  t.match(await lookup(policy, 'public.test', false), {
    err: null,
    address: '8.8.8.8',
    family: 4,
  });
  for (const [host, address] of [
    ['mixed.test', '10.0.0.1'],
    ['mixed6.test', 'fd00::1'],
    ['metadata.test', '169.254.169.254'],
  ] as const) {
    for (const all of [true, false]) {
      const { err } = await lookup(policy, host, all);
      t.type(err, OutboundRefusedError, `${host} (all: ${all})`);
      t.match(err, { message: new RegExp(`^refused: ${host} \\(${address}\\) is a`) });
    }
  }
  t.match((await lookup(policy, 'nowhere.test', true)).err, { code: 'ENOTFOUND' });
});

interface Counter {
  server: Server;
  port: number;
  url: string;
  connections: number;
  requests: number;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 counting TCP connections and requests. */
async function counter(
  handler: (path: string) => { status: number; location?: string } = () => ({ status: 200 }),
): Promise<Counter> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    state.requests++;
    const { status, location } = handler(req.url ?? '/');
    res.writeHead(status, location ? { location } : { 'content-type': 'text/plain' });
    res.end(status === 200 ? 'ok' : '');
  });
  server.on('connection', (socket) => {
    state.connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const state: Counter = {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    connections: 0,
    requests: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
  return state;
}

async function get(dispatcher: Dispatcher, url: string): Promise<number | Error> {
  try {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(5000) });
    await res.body.text();
    return res.statusCode;
  } catch (err) {
    return err as Error;
  }
}

t.test('the dispatcher checks at connect time, on every hop', async (t) => {
  const target = await counter();
  t.teardown(() => target.close());
  const entry = await counter((path) =>
    path === '/self'
      ? { status: 302, location: '/ok' }
      : path === '/hop'
        ? { status: 302, location: `${target.url}/x` }
        : path === '/hop-localhost'
          ? { status: 302, location: `http://localhost:${target.port}/x` }
          : { status: 200 },
  );
  t.teardown(() => entry.close());

  const resolve = fakeResolver({ 'rebind.test': ['127.0.0.1'] });
  const strict = createOutboundDispatcher(
    5000,
    new OutboundPolicy({
      allowPrivateNetworks: false,
      allowlist: [`127.0.0.1:${entry.port}`],
      resolve,
    }),
  );
  t.teardown(() => strict.destroy());

  t.equal(await get(strict, `${entry.url}/ok`), 200, 'the allowlisted origin is reached');
  t.equal(await get(strict, `${entry.url}/self`), 200, 'a redirect within it is followed');

  const refusals: Array<[string, RegExp]> = [
    [`${target.url}/x`, /^refused: 127\.0\.0\.1 is a loopback address/],
    [
      `http://localhost:${target.port}/x`,
      /^refused: localhost \((127\.0\.0\.1|::1)\) is a loopback/,
    ],
    [
      `http://rebind.test:${target.port}/x`,
      /^refused: rebind\.test \(127\.0\.0\.1\) is a loopback/,
    ],
    [`http://[::ffff:127.0.0.1]:${target.port}/x`, /^refused: ::ffff:7f00:1 embeds 127\.0\.0\.1/],
    [`http://0.0.0.0:${target.port}/x`, /^refused: 0\.0\.0\.0 is an unspecified address/],
    [`http://127.0.0.2:${target.port}/x`, /^refused: 127\.0\.0\.2 is a loopback address/],
    [`http://[::1]:${target.port}/x`, /^refused: ::1 is a loopback address/],
    [`${entry.url}/hop`, /^refused: 127\.0\.0\.1 is a loopback address/],
    [`${entry.url}/hop-localhost`, /^refused: localhost \(/],
  ];
  for (const [url, message] of refusals) {
    const result = await get(strict, url);
    t.type(result, OutboundRefusedError, url);
    t.match(result, { message }, url);
  }
  t.equal(
    resolve.calls.get('rebind.test'),
    1,
    'the name was resolved at connect time, by the policy',
  );
  t.equal(resolve.calls.get('localhost'), 2, 'once for the URL and once for the redirect hop');
  t.equal(target.connections, 0, 'no connection ever reached the refused server');
  t.equal(entry.requests, 5, 'the allowlisted origin served every first hop');

  const open = createOutboundDispatcher(
    5000,
    new OutboundPolicy({ allowPrivateNetworks: true, allowlist: [] }),
  );
  t.teardown(() => open.destroy());
  t.equal(await get(open, `${entry.url}/hop`), 200, 'ALLOW_PRIVATE_NETWORKS lets it through');
  t.equal(await get(open, `http://localhost:${target.port}/x`), 200);
  t.equal(target.requests, 2, 'and the server is reached then');
});
