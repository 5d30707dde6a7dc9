/**
 * Why an image failed, from a small fixed set: what metrics count it under. The reason
 * text, recorded on the image, says more.
 */
export const IMAGE_FAILURE_KINDS = [
  'http_error',
  'timeout',
  'network',
  'refused',
  'too_large',
  'redirects',
  'not_image',
  'decode',
  'storage',
  'other',
] as const;
export type ImageFailureKind = (typeof IMAGE_FAILURE_KINDS)[number];

/** A per-image failure with a short reason that is recorded on the image and shown to users. */
export class ImageError extends Error {
  constructor(
    readonly kind: ImageFailureKind,
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

export function failureKind(err: unknown): ImageFailureKind {
  return err instanceof ImageError ? err.kind : 'other';
}

export function describeError(err: unknown): string {
  if (err instanceof ImageError) return err.reason;
  if (err instanceof Error) return err.message;
  return String(err);
}
