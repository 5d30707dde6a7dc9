import type { ImageFailureKind } from '../pipeline/image-error.js';

/** What came of one webhook call. */
export type WebhookOutcome =
  /** Answered 2xx. */
  | 'delivered'
  /** Failed; another attempt is scheduled. */
  | 'retried'
  /** Failed, and no attempt is left (or retrying cannot help). */
  | 'failed';

/**
 * What the image pipeline and the webhook dispatcher report as they work, each from the one
 * place where the event happens. Where it goes (a Prometheus registry) is not their concern.
 */
export interface Metrics {
  /** An image was downloaded, re-encoded and stored. */
  imageProcessed(bytesIn: number, bytesOut: number): void;
  /** An image failed; `bytesIn` is set when it had been downloaded. */
  imageFailed(kind: ImageFailureKind, bytesIn: number | null): void;
  /** An image's bytes arrived, `seconds` after its download began (retries included). */
  downloaded(seconds: number): void;
  /** An image was decoded and re-encoded in `seconds`. */
  encoded(seconds: number): void;
  webhookAttempted(outcome: WebhookOutcome): void;
}
