/** The service's process entry (`npm start`): sizes libuv's threadpool, then loads the server. */
import cores from './cores.cjs';
import { sizeThreadpool } from './threadpool.cjs';

sizeThreadpool(process.env, cores.defaultConcurrency());
void import('./server.js');
