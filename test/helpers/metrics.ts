import { timeout } from './service.js';

/** Samples of a Prometheus text exposition, keyed `name{labels}` as written. */
export type Samples = Map<string, number>;

/** GETs /metrics (with the bearer token when given) and parses every sample. */
export async function scrape(url: string, token?: string): Promise<Samples> {
  const res = await fetch(`${url}/metrics`, {
    signal: timeout(),
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const samples: Samples = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    if (!match?.[1] || !match[2]) throw new Error(`not a sample line: ${line}`);
    samples.set(match[1], Number(match[2]));
  }
  return samples;
}

/** How much each sample moved between two scrapes (samples absent before count from 0). */
export function moved(before: Samples, after: Samples): Map<string, number> {
  return new Map([...after].map(([key, value]) => [key, value - (before.get(key) ?? 0)]));
}
