import path from 'node:path';
import type { Config } from '../config.js';
import type { JobStore } from './job-store.js';
import { SqliteJobStore } from './sqlite-store.js';

export function createStore(config: Config): JobStore {
  return new SqliteJobStore(path.join(config.dataDir, 'jobs.sqlite'));
}
