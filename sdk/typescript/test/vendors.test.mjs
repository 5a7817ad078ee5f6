// Unmodified vendor SDKs pointed at credgate by base URL, with the app key where their API key
// goes: the upstream sees the real key, never the app key. OpenAI and Anthropic against the
// echo upstream's vendor routes; the AWS SDK's S3 client against s3s-fs, which checks every
// signature.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand,
  ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3';
import OpenAI from 'openai';

import { App } from '../dist/index.js';
import { S3, world as makeWorld } from './servers.mjs';

let w;
let s3;
before(async () => {
  w = await makeWorld();
  s3 = await S3.start('AKIDTSTEST', 'ts/secret+KEY');
});
after(async () => {
  await s3.close();
  await w.close();
});

test('openai: a chat completion and a stream', async () => {
  const grant = await w.grant(await w.secret('openai', 'openai', { token: 'sk-real-openai' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const client = new OpenAI({ baseURL: vault.baseUrlFor(grant, '/v1'), apiKey: w.key, maxRetries: 0 });
  const completion = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(completion.choices[0].message.content, 'Hello');
  const seen = w.upstream.last();
  assert.equal(seen.path, '/v1/chat/completions');
  assert.equal(seen.headers.authorization, 'Bearer sk-real-openai');
  assert.ok(!JSON.stringify(seen.headers).includes(w.key));
  const stream = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'Hello');
});

test('anthropic: a message and a stream', async () => {
  const grant = await w.grant(await w.secret('anthropic', 'anthropic', { token: 'sk-ant-real' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const client = new Anthropic({ baseURL: vault.baseUrlFor(grant), apiKey: w.key, maxRetries: 0 });
  const message = await client.messages.create({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(message.content[0].text, 'Hello');
  const seen = w.upstream.last();
  assert.equal(seen.path, '/v1/messages');
  assert.equal(seen.headers['x-api-key'], 'sk-ant-real');
  assert.equal(seen.headers['anthropic-version'], '2023-06-01');
  assert.ok(!JSON.stringify(seen.headers).includes(w.key));
  const stream = client.messages.stream({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  for await (const event of stream) if (event.type === 'content_block_delta') text += event.delta.text;
  assert.equal(text, 'Hello');
});

/** The recipe: the S3 client at the grant's base URL, path-style, the app key as access key id. */
async function s3Client(secretKey, name) {
  const grant = await w.grant(await w.gateway.secret({
    name, type: 'aws_sigv4', credential: { access_key_id: 'AKIDTSTEST', secret_access_key: secretKey },
    config: { base_url: s3.url, region: 'us-east-1', service: 's3' },
    allow_private_destinations: true, allow_insecure_http: true,
  }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  return new S3Client({
    endpoint: vault.baseUrlFor(grant),
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: w.key, secretAccessKey: 'signed-by-credgate' },
    // credgate signs the payload's hash: no trailing checksums in aws-chunked bodies.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

test('@aws-sdk/client-s3: put, get, list and a multipart upload, signed by credgate', async () => {
  const client = await s3Client('ts/secret+KEY', 's3');
  await client.send(new CreateBucketCommand({ Bucket: 'ts-bucket' }));
  await client.send(new PutObjectCommand({ Bucket: 'ts-bucket', Key: 'small.txt', Body: 'hello' }));
  const got = await client.send(new GetObjectCommand({ Bucket: 'ts-bucket', Key: 'small.txt' }));
  assert.equal(await got.Body.transformToString(), 'hello');
  const part = (n) => new Uint8Array(5 << 20).map((_, i) => (i * 31 + n) & 0xff);
  const parts = [part(1), part(2), new TextEncoder().encode('the end')];
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'ts-bucket', Key: 'dir/big.bin' }));
  const etags = [];
  for (const [i, body] of parts.entries()) {
    const { ETag } = await client.send(new UploadPartCommand({ Bucket: 'ts-bucket', Key: 'dir/big.bin', UploadId, PartNumber: i + 1, Body: body }));
    etags.push({ ETag, PartNumber: i + 1 });
  }
  await client.send(new CompleteMultipartUploadCommand({ Bucket: 'ts-bucket', Key: 'dir/big.bin', UploadId, MultipartUpload: { Parts: etags } }));
  const big = await client.send(new GetObjectCommand({ Bucket: 'ts-bucket', Key: 'dir/big.bin' }));
  const bytes = await big.Body.transformToByteArray();
  const whole = Buffer.concat(parts.map((p) => Buffer.from(p)));
  assert.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(whole).digest('hex'));
  const listed = await client.send(new ListObjectsV2Command({ Bucket: 'ts-bucket', Prefix: 'dir/' }));
  assert.deepEqual(listed.Contents.map((o) => o.Key), ['dir/big.bin']);
});

test('@aws-sdk/client-s3: a wrong stored secret surfaces as SignatureDoesNotMatch', async () => {
  const client = await s3Client('not-the-secret', 's3-wrong');
  const error = await client.send(new ListBucketsCommand({})).then(() => assert.fail('listed'), (e) => e);
  assert.equal(error.name, 'SignatureDoesNotMatch', String(error));
});
