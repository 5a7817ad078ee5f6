// Server-sent events from a streamed response, as they arrive.

/** One event: `data` joins the event's data lines with newlines. */
export interface ServerSentEvent {
  data: string;
  event: string;
  id: string | undefined;
}

/** Yields each event of a streamed response as soon as it is complete. */
export async function* iterSse(response: Response): AsyncGenerator<ServerSentEvent> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  let event = 'message';
  let id: string | undefined;
  const feed = (line: string): ServerSentEvent | undefined => {
    if (line === '') {
      const done = data.length ? { data: data.join('\n'), event, id } : undefined;
      data = [];
      event = 'message';
      return done;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    // An id with NUL is ignored (the standard).
    else if (field === 'id' && !value.includes('\0')) id = value;
    return undefined;
  };
  // A CR ends a line, and so does a CRLF: a CR at the end of one chunk followed by an LF at
  // the start of the next is one line end, not two.
  let afterCr = false;
  const lines = function* (text: string): Generator<string> {
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '\n' && afterCr && i === start) {
        afterCr = false;
        start = i + 1;
        continue;
      }
      afterCr = false;
      if (c === '\r' || c === '\n') {
        yield text.slice(start, i);
        if (c === '\r') {
          if (text[i + 1] === '\n') i += 1;
          else if (i + 1 === text.length) afterCr = true;
        }
        start = i + 1;
      }
    }
    buffer = text.slice(start);
  };
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    for (const line of lines(buffer + decoder.decode(chunk, { stream: true }))) {
      const done = feed(line);
      if (done) yield done;
    }
  }
  // What is left without a line end is an incomplete event: dropped, as the standard says.
  decoder.decode();
}
