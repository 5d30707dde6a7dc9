import path from 'node:path';
import type { Config } from '../config.js';
import type { JobStore } from './job-store.js';
import { MongoJobStore } from './mongo-store.js';
import { SqliteJobStore } from './sqlite-store.js';

/** MongoDB when MONGODB_URI is set (production); otherwise the embedded SQLite file. */
export function createStore(config: Config): JobStore {
  if (config.mongodbUri) return new MongoJobStore(config.mongodbUri, config.mongodbDb);
  return new SqliteJobStore(path.join(config.dataDir, 'jobs.sqlite'));
}
