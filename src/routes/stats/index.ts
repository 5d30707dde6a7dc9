import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { StatsResponse } from '../../schemas/stats.js';
import type { ImageTotals } from '../../store/job-store.js';

function figures(totals: ImageTotals) {
  const finished = totals.processed + totals.failed;
  return {
    images_processed: totals.processed,
    images_failed: totals.failed,
    processing_ms_total: totals.processingMs,
    processing_ms_average:
      finished === 0 ? null : Math.round((totals.processingMs / finished) * 10) / 10,
    bytes_in: totals.bytesIn,
    bytes_out: totals.bytesOut,
    bytes_saved: totals.bytesIn - totals.bytesOut,
  };
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const schema = {
    summary: 'Processing statistics, since start and of all time',
    description:
      'Images processed and failed, processing time, bytes in, out and saved: since this ' +
      'process started, and of all time from the store; and the jobs by status now. A ' +
      "direct image upload counts as a job of one image, and its image with the CSV jobs' images.",
    tags: ['service'],
    response: { 200: StatsResponse },
  };
  app.get('/stats', { schema }, async () => {
    const stats = await app.services.stats.read();
    const { jobs } = stats;
    return {
      started_at: stats.startedAt.toISOString(),
      since_start: figures(stats.sinceStart),
      all_time: figures(stats.allTime),
      jobs: {
        ...jobs,
        total: jobs.PENDING + jobs.PROCESSING + jobs.COMPLETED + jobs.FAILED,
        image_uploads: stats.imageUploads,
      },
    };
  });
};

export default routes;
