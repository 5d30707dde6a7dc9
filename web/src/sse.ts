export interface ServerSentEvent {
  event: string;
  data: string;
}

/**
 * Turns the text of a `text/event-stream` body, fed in chunks cut anywhere, into its
 * events (the WHATWG event-stream format: `event:` and `data:` fields, a blank line ends an
 * event, lines starting with `:` are comments, CRLF, LF and CR all end a line). `id:` and
 * `retry:` are read past: the page never resumes a stream, it reconnects or polls.
 */
export class EventStreamParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private afterCr = false;

  push(chunk: string): ServerSentEvent[] {
    // A CR that ended the last chunk may be the first half of a CRLF.
    if (this.afterCr && chunk !== '') {
      if (chunk.startsWith('\n')) chunk = chunk.slice(1);
      this.afterCr = false;
    }
    this.buffer += chunk;
    const events: ServerSentEvent[] = [];
    for (;;) {
      const end = this.buffer.search(/[\r\n]/);
      if (end === -1) break;
      let next = end + 1;
      if (this.buffer[end] === '\r') {
        if (next === this.buffer.length) this.afterCr = true;
        else if (this.buffer[next] === '\n') next += 1;
      }
      const complete = this.line(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(next);
      if (complete) events.push(complete);
    }
    return events;
  }

  private line(line: string): ServerSentEvent | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return null;
      }
      const complete = {
        event: this.event === '' ? 'message' : this.event,
        data: this.data.join('\n'),
      };
      this.event = '';
      this.data = [];
      return complete;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    return null;
  }
}
