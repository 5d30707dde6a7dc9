import { setImmediate as flush } from 'node:timers/promises';
import t from 'tap';
import { ImageSlots } from '../../src/domain/image-slots.js';

/** An image whose download and encode end when the test says so. */
class Image {
  stage: 'queued' | 'downloading' | 'encoding' | 'done' = 'queued';
  readonly result: Promise<string>;
  private endDownload!: (error?: Error) => void;
  private endEncode!: () => void;

  constructor(slots: ImageSlots, host: string | null, name: string) {
    this.result = slots.run(host, async (encodeSlot) => {
      this.stage = 'downloading';
      const failed = await new Promise<Error | undefined>((resolve) => {
        this.endDownload = resolve;
      });
      if (failed) throw failed;
      await encodeSlot(async () => {
        this.stage = 'encoding';
        await new Promise<void>((resolve) => {
          this.endEncode = resolve;
        });
      });
      this.stage = 'done';
      return name;
    });
  }

  async downloaded(error?: Error): Promise<void> {
    this.endDownload(error);
    await flush();
  }

  async encoded(): Promise<void> {
    this.endEncode();
    await flush();
  }
}

const stages = (images: Image[]): string => images.map((image) => image.stage).join(' ');

t.test('downloads go on while the encode slots are full, up to their own limit', async (t) => {
  const slots = new ImageSlots({ downloads: 2, encodes: 1, perHost: 10 });
  const images = ['a', 'b', 'c', 'd'].map((name) => new Image(slots, null, name));
  await flush();
  t.equal(stages(images), 'downloading downloading queued queued');
  t.equal(slots.occupied, 2);

  await images[0]?.downloaded();
  t.equal(
    stages(images),
    'encoding downloading downloading queued',
    'an image in its encode slot gives its download slot to the next',
  );
  t.equal(slots.occupied, 3);

  await images[1]?.downloaded();
  t.equal(
    stages(images),
    'encoding downloading downloading queued',
    'a downloaded image waiting for an encode slot keeps its download slot',
  );

  await images[0]?.encoded();
  t.equal(stages(images), 'done encoding downloading downloading');
  t.equal(await images[0]?.result, 'a', "the task's result is the caller's");

  for (const image of images.slice(1)) {
    await image.downloaded();
    await image.encoded();
  }
  t.strictSame(await Promise.all(images.map((image) => image.result)), ['a', 'b', 'c', 'd']);
  t.equal(slots.occupied, 0);
});

t.test("a host's turn is held while downloading and given up when the bytes are in", async (t) => {
  const slots = new ImageSlots({ downloads: 8, encodes: 4, perHost: 1 });
  const others = [1, 2, 3, 4].map((n) => new Image(slots, `other${n}.test`, `o${n}`));
  const a1 = new Image(slots, 'slow.test', 'a1');
  const a2 = new Image(slots, 'slow.test', 'a2');
  await flush();
  t.equal(stages([a1, a2]), 'downloading queued');
  t.equal(slots.waitingForHost, 1, 'the second image of the host waits, holding no slot');
  t.equal(slots.occupied, 5);

  for (const image of others) await image.downloaded();
  t.equal(stages(others), 'encoding encoding encoding encoding', 'every encode slot taken');
  await a1.downloaded();
  t.equal(
    stages([a1, a2]),
    'downloading downloading',
    'a1 waits for an encoder (its stage has not moved) and a2 downloads from the same host',
  );
  t.equal(slots.waitingForHost, 0);
  t.equal(slots.occupied, 6);

  for (const image of others) await image.encoded();
  await a2.downloaded();
  await a1.encoded();
  await a2.encoded();
  t.strictSame(await Promise.all([a1.result, a2.result]), ['a1', 'a2']);
});

t.test('an image failing before its encode frees its slots and reports the error', async (t) => {
  const slots = new ImageSlots({ downloads: 1, encodes: 1, perHost: 1 });
  const failing = new Image(slots, 'h.test', 'x');
  const next = new Image(slots, 'h.test', 'y');
  await flush();
  t.equal(stages([failing, next]), 'downloading queued');
  const rejected = t.rejects(failing.result, /HTTP 404/);
  await failing.downloaded(new Error('HTTP 404'));
  await rejected;
  await flush();
  t.equal(next.stage, 'downloading', 'the next image got the download slot and the host turn');
  await next.downloaded();
  await next.encoded();
  t.equal(await next.result, 'y');
});
