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
    else if (field === 'id') id = value;
    return undefined;
  };
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      const done = feed(line);
      if (done) yield done;
    }
  }
  buffer += decoder.decode();
  if (buffer) {
    const done = feed(buffer);
    if (done) yield done;
  }
  const last = feed('');
  if (last) yield last;
}
