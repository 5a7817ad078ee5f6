// Real peers for the SDK's tests: a credgate process (CREDGATE_BIN), an echo upstream that
// also answers like OpenAI and Anthropic, and s3s-fs (CREDGATE_TEST_S3S_FS), each on port 0.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** A real credgate process on port 0, with its admin token. */
export class Gateway {
  static async start(...args) {
    const binary = process.env.CREDGATE_BIN;
    if (!binary) throw new Error('set CREDGATE_BIN to the credgate binary (the Rust test suite does)');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credgate-ts-'));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CREDGATE_')));
    env.CREDGATE_LOG = 'info';
    const log = fs.openSync(path.join(dir, 'credgate.log'), 'w');
    const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), ...args], {
      env, stdio: ['ignore', 'pipe', log],
    });
    const lines = createInterface({ input: child.stdout });
    const address = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('credgate did not start')), 30_000);
      child.once('exit', (code) => reject(new Error(`credgate exited with ${code}: ${fs.readFileSync(path.join(dir, 'credgate.log'), 'utf8')}`)));
      lines.on('line', (line) => {
        const m = /^listening on (\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    const gw = new Gateway();
    gw.child = child;
    gw.dir = dir;
    gw.url = `http://${address}`;
    gw.adminToken = fs.readFileSync(path.join(dir, 'data', 'admin-token'), 'utf8').trim();
    return gw;
  }

  async admin(method, apiPath, body) {
    const r = await fetch(`${this.url}/admin/v1${apiPath}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (r.status >= 400) throw new Error(`${method} ${apiPath}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async principal(name, kind = 'agent') {
    return (await this.admin('POST', '/principals', { kind, name })).id;
  }

  async key(principal) {
    return (await this.admin('POST', `/principals/${principal}/keys`, {})).key;
  }

  async secret(body) {
    return (await this.admin('POST', '/secrets', body)).id;
  }

  async grant(secret, principal, policy = {}) {
    return (await this.admin('POST', `/secrets/${secret}/grants`, { principal_id: principal, grant_policy: policy })).grant_id;
  }

  /** The audit records of one request id, waiting for them to be written. */
  async audit(requestId) {
    for (let i = 0; i < 100; i++) {
      const { data } = await this.admin('GET', `/audit?request_id=${requestId}`);
      if (data.length) return data;
      await new Promise((r) => setTimeout(r, 20));
    }
    return [];
  }

  log() {
    return fs.readFileSync(path.join(this.dir, 'credgate.log'), 'utf8');
  }

  async close() {
    if (this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      await new Promise((r) => this.child.once('exit', r));
    }
  }
}

/** Records every request; answers by path, like the vendors where the path is theirs. */
export class Upstream {
  static async start() {
    const up = new Upstream();
    up.seen = [];
    up.releaseGate = () => {};
    const gate = new Promise((resolve) => { up.releaseGate = resolve; });
    up.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const body = Buffer.concat(chunks);
        const url = new URL(req.url, 'http://upstream');
        up.seen.push({ method: req.method, path: url.pathname, query: url.search, headers: { ...req.headers }, body });
        const send = (status, payload, type = 'application/json') => {
          res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(payload) });
          res.end(payload);
        };
        const sse = async (now, gated = []) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          for (const data of now) res.write(data);
          if (gated.length) await gate;
          for (const data of gated) res.write(data);
          res.end();
        };
        if (url.pathname.startsWith('/status/')) return send(Number(url.pathname.split('/').pop()), '{"upstream": "says no"}');
        if (url.pathname === '/slow') return setTimeout(() => send(200, '{}'), 3000);
        if (url.pathname === '/sse') return sse(['data: first\n\n'], ['data: second\n\n', 'event: done\ndata: [DONE]\n\n']);
        if (url.pathname === '/sse-slow') {
          // Four events 150 ms apart: longer in all than a short client timeout.
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          for (let i = 1; i <= 4; i++) {
            res.write(`data: ${i}\n\n`);
            await new Promise((r) => setTimeout(r, 150));
          }
          return res.end();
        }
        if (url.pathname.endsWith('/chat/completions')) {
          const request = JSON.parse(body.toString() || '{}');
          if (request.stream) {
            const chunk = (text, finish = null) => `data: ${JSON.stringify({
              id: 'c1', object: 'chat.completion.chunk', created: 1, model: request.model,
              choices: [{ index: 0, delta: text ? { content: text } : {}, finish_reason: finish }],
            })}\n\n`;
            return sse([chunk('Hel'), chunk('lo'), chunk(null, 'stop'), 'data: [DONE]\n\n']);
          }
          return send(200, JSON.stringify({
            id: 'c1', object: 'chat.completion', created: 1, model: request.model,
            choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          }));
        }
        if (url.pathname.endsWith('/messages')) {
          const request = JSON.parse(body.toString() || '{}');
          if (request.stream) {
            const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
            return sse([
              ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: request.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 1, output_tokens: 0 } } }),
              ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
              ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hel' } }),
              ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'lo' } }),
              ev('content_block_stop', { index: 0 }),
              ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 2 } }),
              ev('message_stop', {}),
            ]);
          }
          return send(200, JSON.stringify({
            id: 'msg_1', type: 'message', role: 'assistant', model: request.model ?? 'm',
            content: [{ type: 'text', text: 'Hello' }], stop_reason: 'end_turn', stop_sequence: null,
            usage: { input_tokens: 1, output_tokens: 1 },
          }));
        }
        return send(200, JSON.stringify({
          method: req.method, path: url.pathname, query: [...url.searchParams], headers: req.headers, body: body.toString('latin1'),
        }));
      });
    });
    await new Promise((resolve) => up.server.listen(0, '127.0.0.1', resolve));
    up.url = `http://127.0.0.1:${up.server.address().port}`;
    return up;
  }

  last() {
    return this.seen.at(-1);
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  }
}

async function freePort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** s3s-fs, an S3-compatible server that verifies every signature. */
export class S3 {
  static async start(accessKey, secretKey) {
    const binary = process.env.CREDGATE_TEST_S3S_FS;
    if (!binary) throw new Error('set CREDGATE_TEST_S3S_FS to the s3s-fs binary (the Rust test suite does)');
    const port = await freePort();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 's3s-ts-'));
    const s3 = new S3();
    s3.child = spawn(binary, ['--host', '127.0.0.1', '--port', String(port), '--access-key', accessKey, '--secret-key', secretKey, root], { stdio: 'ignore' });
    s3.url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 200; i++) {
      const up = await new Promise((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
        socket.on('error', () => resolve(false));
      });
      if (up) return s3;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('s3s-fs did not start');
  }

  async close() {
    if (this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      await new Promise((r) => this.child.once('exit', r));
    }
  }
}

/** A gateway, an upstream and an app with its key, for a test file. */
export async function world(...args) {
  const gateway = await Gateway.start(...args);
  const upstream = await Upstream.start();
  const agent = await gateway.principal('ts-app');
  const key = await gateway.key(agent);
  return {
    gateway,
    upstream,
    agent,
    key,
    secret: (name, type, credential, config = {}, extra = {}) => gateway.secret({
      name, type, credential, config: { base_url: upstream.url, ...config },
      allow_private_destinations: true, allow_insecure_http: true, ...extra,
    }),
    grant: (secret, policy) => gateway.grant(secret, agent, policy),
    close: async () => {
      await upstream.close();
      await gateway.close();
    },
  };
}
