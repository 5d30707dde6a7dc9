import fs from 'node:fs/promises';
import path from 'node:path';
import { uploadFile } from '../pipeline/upload-source.js';
import { resultsFile } from './results-csv.js';

export interface OutputDirs {
  imagesDir: string;
  resultsDir: string;
  uploadsDir: string;
}

/**
 * Removes what a job leaves on disk: its directory of output images (thumbnails included),
 * its results CSV, and a direct upload's saved original.
 */
export async function removeJobFiles(dirs: OutputDirs, id: string): Promise<void> {
  await fs.rm(path.join(dirs.imagesDir, id), { recursive: true, force: true });
  await fs.rm(resultsFile(dirs.resultsDir, id), { force: true });
  await fs.rm(uploadFile(dirs.uploadsDir, id), { force: true });
}

/** Removes one output image (`<request_id>/<name>`), and its job's directory once empty. */
export async function removeOutputImage(imagesDir: string, outputFile: string): Promise<void> {
  const file = path.join(imagesDir, outputFile);
  await fs.rm(file, { force: true });
  try {
    await fs.rmdir(path.dirname(file));
  } catch (err) {
    // Other images of the job are still there, or another caller removed it first.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
  }
}
