/** A per-image failure with a short reason that is recorded on the image and shown to users. */
export class ImageError extends Error {
  constructor(
    readonly reason: string,
    /** Whether the same request might succeed later (timeouts, 429, 5xx, dropped connections). */
    readonly retryable = false,
    /** How long the server asked us to wait (Retry-After), if it said. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(reason);
    this.name = 'ImageError';
  }
}

export function describeError(err: unknown): string {
  if (err instanceof ImageError) return err.reason;
  if (err instanceof Error) return err.message;
  return String(err);
}
