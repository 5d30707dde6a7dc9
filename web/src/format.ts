const KB = 1000;
const MB = KB * KB;

/** Sizes in decimal units, as file managers show them. */
export function formatBytes(bytes: number): string {
  if (bytes < KB) return `${bytes} B`;
  if (bytes < MB) return `${(bytes / KB).toFixed(1)} kB`;
  return `${(bytes / MB).toFixed(2)} MB`;
}

/** "88% smaller" (or "12% larger" when re-encoding grew the file). */
export function formatSaving(bytesIn: number, bytesOut: number): string {
  if (bytesIn === 0) return '';
  const change = Math.round((1 - bytesOut / bytesIn) * 100);
  return change >= 0 ? `${change}% smaller` : `${-change}% larger`;
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}
