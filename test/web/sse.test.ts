import fc from 'fast-check';
import t from 'tap';
import { EventStreamParser, type ServerSentEvent } from '../../web/src/sse.js';

const parseAll = (chunks: string[]): ServerSentEvent[] => {
  const parser = new EventStreamParser();
  return chunks.flatMap((chunk) => parser.push(chunk));
};

t.test('reads events, names, multi-line data, comments and ids', async (t) => {
  const stream =
    ': keepalive\n\n' +
    'id: 1\nevent: progress\ndata: {"percent":50}\n\n' +
    'data: first line\ndata: second line\n\n' +
    'event:done\ndata:{"percent":100}\nretry: 1000\n\n' +
    'event: progress\ndata: unfinished';
  t.same(parseAll([stream]), [
    { event: 'progress', data: '{"percent":50}' },
    { event: 'message', data: 'first line\nsecond line' },
    { event: 'done', data: '{"percent":100}' },
  ]);
});

t.test('an event name without data dispatches nothing and does not leak', async (t) => {
  t.same(parseAll(['event: progress\n\ndata: x\n\n']), [{ event: 'message', data: 'x' }]);
});

t.test('CRLF, CR and LF line ends read alike', async (t) => {
  const lf = 'event: progress\ndata: a\n\nevent: done\ndata: b\n\n';
  const expected = parseAll([lf]);
  t.equal(expected.length, 2);
  t.same(parseAll([lf.replace(/\n/g, '\r\n')]), expected);
  t.same(parseAll([lf.replace(/\n/g, '\r')]), expected);
});

t.test('the same events however the stream is cut into chunks', async () => {
  const field = fc.stringMatching(/^[^\r\n]*$/);
  const event = fc.record({ event: fc.constantFrom('progress', 'done'), data: field });
  const lineEnd = fc.constantFrom('\n', '\r\n', '\r');
  fc.assert(
    fc.property(
      fc.array(fc.tuple(event, lineEnd), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (events, cuts) => {
        const text = events
          .map(([e, end]) => `event: ${e.event}${end}data: ${e.data}${end}${end}`)
          .join('');
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const chunks: string[] = [];
        let start = 0;
        for (const point of [...points, text.length]) {
          chunks.push(text.slice(start, point));
          start = point;
        }
        const parsed = parseAll(chunks);
        const wanted = events.map(([e]) => e);
        if (JSON.stringify(parsed) !== JSON.stringify(wanted)) {
          throw new Error(`got ${JSON.stringify(parsed)} for ${JSON.stringify(chunks)}`);
        }
      },
    ),
  );
});
