interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

function parseRange(part: string): MediaRange {
  const [media = '', ...params] = part.split(';');
  const [type = '', subtype = ''] = media.trim().toLowerCase().split('/');
  let q = 1;
  for (const param of params) {
    const [name, value] = param.split('=').map((s) => s.trim());
    if (name?.toLowerCase() === 'q' && value !== undefined) {
      const parsed = Number(value);
      q = Number.isFinite(parsed) ? Math.min(Math.max(parsed, 0), 1) : 0;
    }
  }
  return { type, subtype, q };
}

/** The weight the most specific matching range gives a media type (RFC 9110 §12.5.1). */
function weight(ranges: MediaRange[], type: string, subtype: string): number {
  let specificity = -1;
  let q = 0;
  for (const range of ranges) {
    const typeMatches = range.type === type || range.type === '*';
    const subtypeMatches = range.subtype === subtype || range.subtype === '*';
    if (!typeMatches || !subtypeMatches) continue;
    const rank = (range.type === '*' ? 0 : 1) + (range.subtype === '*' ? 0 : 1);
    if (rank > specificity) {
      specificity = rank;
      q = range.q;
    }
  }
  return q;
}

/**
 * Whether an Accept header ranks text/html above application/json. Browsers put text/html
 * first; curl, fetch() and most API clients send `*\/*` or nothing, a tie that keeps JSON.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return false;
  const ranges = accept.split(',').map(parseRange);
  return weight(ranges, 'text', 'html') > weight(ranges, 'application', 'json');
}
