/** The service's process entry (`npm start`): sizes libuv's threadpool, then loads the server. */
import { sizeThreadpool } from './threadpool.cjs';

sizeThreadpool(process.env);
void import('./server.js');
