// Server-sent events parsed as the standard says, however the bytes are split.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { iterSse } from '../dist/index.js';

/** A response whose body arrives in exactly these chunks. */
function chunked(...chunks) {
  const encoder = new TextEncoder();
  return new Response(new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === 'string' ? encoder.encode(c) : c);
      controller.close();
    },
  }));
}

async function events(...chunks) {
  const out = [];
  for await (const e of iterSse(chunked(...chunks))) out.push([e.event, e.data, e.id ?? null]);
  return out;
}

test('LF, CRLF and CR line ends, and a CRLF split across chunks, are one line end each', async () => {
  assert.deepEqual(await events('data: a\n\n', 'data: b\r\n\r\n', 'data: c\r\r'), [
    ['message', 'a', null], ['message', 'b', null], ['message', 'c', null],
  ]);
  assert.deepEqual(await events('data: a\r', '\ndata: b\r', '\nid: 7\r', '\n\r', '\n'), [['message', 'a\nb', '7']]);
});

test('fields, comments, multi-line data, and a byte-order mark', async () => {
  assert.deepEqual(await events('\uFEFF: a comment\nevent: update\nid: 1\ndata: line one\ndata:line two\n\n'), [
    ['update', 'line one\nline two', '1'],
  ]);
  // A multi-byte character split between chunks.
  const bytes = new TextEncoder().encode('data: é\n\n');
  assert.deepEqual(await events(bytes.slice(0, 7), bytes.slice(7)), [['message', 'é', null]]);
  // The event name resets; the id carries on; an id with NUL is ignored; no data, no event.
  assert.deepEqual(await events('event: x\nid: 2\n\ndata: d\n\nid: bad\0id\ndata: e\n\n'), [
    ['message', 'd', '2'], ['message', 'e', '2'],
  ]);
});

test('an event the stream ends in the middle of is dropped', async () => {
  assert.deepEqual(await events('data: whole\n\n', 'data: cut'), [['message', 'whole', null]]);
  assert.deepEqual(await events('data: cut\n'), []);
});
