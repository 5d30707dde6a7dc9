import t from 'tap';
import { BodyBuffers } from '../../src/pipeline/body-buffers.js';

t.test(
  'a buffer is exactly as long as asked, and its memory is reused once given back',
  async (t) => {
    const bodies = new BodyBuffers(4);
    const first = bodies.take(100_000);
    t.equal(first?.length, 100_000);
    if (!first) return;
    bodies.give(first);
    const second = bodies.take(90_000);
    t.equal(second?.length, 90_000);
    t.equal(second?.buffer, first.buffer, 'the same memory');
  },
);

t.test('memory still lent out is never handed out again', async (t) => {
  const bodies = new BodyBuffers(4);
  const a = bodies.take(1000);
  const b = bodies.take(1000);
  t.not(a?.buffer, b?.buffer);
});

t.test('the smallest free memory that fits is taken', async (t) => {
  const bodies = new BodyBuffers(4);
  const large = bodies.take(3_000_000);
  const small = bodies.take(10_000);
  if (!large || !small) return t.fail('no buffers');
  bodies.give(large);
  bodies.give(small);
  t.equal(bodies.take(20_000)?.buffer, small.buffer, 'a small body gets the small memory');
  t.equal(bodies.take(2_000_000)?.buffer, large.buffer, 'and a large one the large');
});

t.test('a body over 4 MiB gets no buffer', async (t) => {
  const bodies = new BodyBuffers(4);
  t.equal(bodies.take(4 * 1024 * 1024 + 1), null);
  t.equal(bodies.take(4 * 1024 * 1024)?.length, 4 * 1024 * 1024);
});

t.test('only memory it lent is taken back, and only once', async (t) => {
  const bodies = new BodyBuffers(4);
  const foreign = Buffer.allocUnsafeSlow(64 * 1024);
  bodies.give(foreign);
  t.not(bodies.take(1000)?.buffer, foreign.buffer, 'a buffer from elsewhere is not reused');

  const lent = bodies.take(1000);
  if (!lent) return t.fail('no buffer');
  bodies.give(lent);
  bodies.give(lent);
  const x = bodies.take(1000);
  const y = bodies.take(1000);
  t.equal(x?.buffer, lent.buffer);
  t.not(y?.buffer, lent.buffer, 'given back twice, handed out once');
});

t.test('at most `keep` free buffers are held', async (t) => {
  const bodies = new BodyBuffers(2);
  const lent = [bodies.take(1000), bodies.take(1000), bodies.take(1000)];
  for (const buffer of lent) if (buffer) bodies.give(buffer);
  const again = [bodies.take(1000), bodies.take(1000), bodies.take(1000)];
  const reused = again.filter((b) => lent.some((l) => l?.buffer === b?.buffer));
  t.equal(reused.length, 2);
});
