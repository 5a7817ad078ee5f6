// Calls held for an operator's approval: proxyRequest answers a PendingApproval,
// awaitApproval the upstream's response once approved, or the error of a denial.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { App, ApprovalDenied, ApprovalInfo, ApprovalTimeout, PendingApproval, ProxyResult } from '../dist/index.js';
import { world as makeWorld } from './servers.mjs';

let w;
before(async () => { w = await makeWorld(); });
after(async () => { await w.close(); });

const held = { require_approval: [{ methods: ['POST'], path_prefixes: ['/refunds'] }] };

test('a held call is a PendingApproval, made once approved, and awaitApproval answers its response', async () => {
  const grant = await w.grant(await w.secret('payments', 'bearer', { token: 'sk-live' }), held);
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const pending = await vault.proxyRequest('POST', `${w.upstream.url}/refunds`, {
    grantId: grant, json: { amount: 1250 }, reason: 'refund order 1009',
  });
  assert.ok(pending instanceof PendingApproval, String(pending));
  assert.equal(pending.status, 'pending');
  assert.ok(pending.approvalUrl.includes(`/portal/#/approvals/${pending.approvalId}`));
  assert.equal(w.upstream.seen.length, 0, 'not made yet');
  const info = await vault.getApprovalStatus(pending.approvalId);
  assert.ok(info instanceof ApprovalInfo);
  assert.equal(info.isFinal, false);
  await assert.rejects(vault.awaitApproval(pending.approvalId, { timeout: 1 }), ApprovalTimeout);
  const waiting = vault.awaitApproval(pending.approvalId, { timeout: 30 });
  await new Promise((r) => setTimeout(r, 200));
  await w.gateway.admin('POST', `/approvals/${pending.approvalId}/approve`, { note: 'ok' });
  const result = await waiting;
  assert.ok(result instanceof ProxyResult);
  assert.equal(result.status, 200);
  assert.equal(result.json().path, '/refunds');
  assert.equal(result.json().headers.authorization, 'Bearer sk-live');
  assert.equal(w.upstream.seen.length, 1, 'made once');
  const done = await vault.getApprovalStatus(pending.approvalId);
  assert.equal(done.status, 'executed');
  assert.equal(done.note, 'ok');
  assert.equal(done.responseStatus, 200);
});

test('a denied call throws ApprovalDenied with the operator\'s note', async () => {
  const grant = await w.grant(await w.secret('payments-2', 'bearer', { token: 't' }), held);
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const pending = await vault.proxyRequest('POST', `${w.upstream.url}/refunds`, { grantId: grant, json: {} });
  await w.gateway.admin('POST', `/approvals/${pending.approvalId}/deny`, { note: 'not this one' });
  const denied = await vault.awaitApproval(pending.approvalId).then(() => assert.fail('made'), (e) => e);
  assert.ok(denied instanceof ApprovalDenied);
  assert.match(denied.message, /not this one/);
});
