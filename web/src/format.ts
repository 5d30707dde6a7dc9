const KB = 1000;
const MB = KB * KB;

/** Sizes in decimal units, as file managers show them. */
export function formatBytes(bytes: number): string {
  if (bytes < KB) return `${bytes} B`;
  if (bytes < MB) return `${(bytes / KB).toFixed(1)} kB`;
  return `${(bytes / MB).toFixed(2)} MB`;
}

/**
 * "88% smaller" (or "12% larger" when re-encoding grew the file). Rounded towards no
 * change, so a file that shrank by 99.8% never reads as "100% smaller".
 */
export function formatSaving(bytesIn: number, bytesOut: number): string {
  if (bytesIn === 0) return '';
  const saved = (1 - bytesOut / bytesIn) * 100;
  return saved >= 0 ? `${Math.floor(saved)}% smaller` : `${Math.ceil(-saved)}% larger`;
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}
