import t from 'tap';
import { Alarm } from '../../src/domain/alarm.js';

t.test('a wake cuts a sleep short', async (t) => {
  const alarm = new Alarm();
  let woke = false;
  const sleeping = alarm.sleep(60_000).then(() => {
    woke = true;
  });
  await Promise.resolve();
  t.notOk(woke, 'still asleep before the wake');
  alarm.wake();
  await sleeping;
  t.ok(woke);
});

t.test('a wake while awake is kept for the next sleep, once', async (t) => {
  const alarm = new Alarm();
  alarm.wake();
  alarm.wake();
  await alarm.sleep(60_000);
  let woke = false;
  const second = alarm.sleep(20).then(() => {
    woke = true;
  });
  await Promise.resolve();
  t.notOk(woke, 'two early wakes skip one sleep, not two');
  await second;
  t.ok(woke, 'the sleep still ends on its own');
});
