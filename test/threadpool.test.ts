import t from 'tap';
import threadpool from '../src/threadpool.cjs';

// A CommonJS module: its exports arrive as one object.
const { sizeThreadpool } = threadpool;

t.test(
  'the threadpool gets CONCURRENCY + 4 threads unless UV_THREADPOOL_SIZE is given',
  async (t) => {
    const sized = (env: NodeJS.ProcessEnv) => {
      sizeThreadpool(env, 6);
      return env.UV_THREADPOOL_SIZE;
    };
    const byDefault = '10';
    t.equal(sized({}), byDefault, "CONCURRENCY's default");
    t.equal(sized({ CONCURRENCY: '3' }), '7');
    t.equal(sized({ CONCURRENCY: '2000' }), '1024', "libuv's maximum");
    t.equal(sized({ CONCURRENCY: 'many' }), byDefault, 'malformed: left to the config loader');
    t.equal(sized({ CONCURRENCY: '3', UV_THREADPOOL_SIZE: '5' }), '5', 'an explicit size wins');
    t.equal(sized({ UV_THREADPOOL_SIZE: '' }), byDefault, 'empty is unset');
  },
);
