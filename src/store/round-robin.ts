import type { ImageRecord } from './job-store.js';

/**
 * Shares `limit` claims between the active jobs, a fair share each and round after round
 * until the limit is reached or every job is out of claimable images. Successive calls
 * start one job further along (`turn`), so when the pool only has room for one or two
 * images at a time, the oldest job does not take them all and a small job behind a large
 * one still moves.
 */
export async function claimRoundRobin(
  jobIds: string[],
  limit: number,
  turn: number,
  claimFrom: (jobId: string, want: number) => Promise<ImageRecord[]>,
): Promise<ImageRecord[]> {
  const claimed: ImageRecord[] = [];
  const start = jobIds.length === 0 ? 0 : turn % jobIds.length;
  let open = [...jobIds.slice(start), ...jobIds.slice(0, start)];
  while (claimed.length < limit && open.length > 0) {
    const share = Math.max(1, Math.floor((limit - claimed.length) / open.length));
    const stillOpen: string[] = [];
    for (const id of open) {
      const want = Math.min(share, limit - claimed.length);
      if (want <= 0) break;
      const got = await claimFrom(id, want);
      claimed.push(...got);
      if (got.length === want) stillOpen.push(id);
    }
    open = stillOpen;
  }
  return claimed.sort((a, b) => a.seq - b.seq);
}
