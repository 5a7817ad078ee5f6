// Overview: what an operator opens the portal for first. Calls over time by outcome, by
// provider, the busiest grants and principals, what is failing, and what is in flight now.
// Charts are SVG drawn here (no library, within the portal's CSP), each with a text summary
// and its numbers in a table; colours from the Okabe–Ito palette, readable with colour-blindness.

import { api } from './api.js';
import { h, table, pageHeader, navigate, shortId, fmtTime } from './ui.js';

const RANGES = { hour: 3600, day: 86400, week: 604800 };
const OK = '#009E73';
const PALETTE = ['#E69F00', '#56B4E9', '#D55E00', '#0072B2', '#CC79A7', '#F0E442', '#000000', '#999999'];
/** Outcomes an operator must see at once when they are not zero. */
const ALARMS = ['provider_error', 'audit_unavailable', 'overloaded', 'upstream_unreachable', 'upstream_timeout'];
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

function colourOf(keys) {
  const map = new Map();
  let i = 0;
  for (const k of keys) map.set(k, k === 'ok' ? OK : PALETTE[i++ % PALETTE.length]);
  return map;
}

function auditLink(filters) {
  return `#/audit?${new URLSearchParams(filters).toString()}`;
}

/** Calls over time, one bar per bucket, stacked by outcome; a bar's part opens its records. */
function timeChart(stats) {
  const from = new Date(stats.from).getTime();
  const to = new Date(stats.to).getTime();
  const size = stats.bucket_seconds * 1000;
  const first = Math.floor(from / size) * size;
  const count = Math.max(1, Math.ceil((to - first) / size));
  const totals = new Array(count).fill(0);
  const parts = [];
  for (const s of stats.series) {
    for (const p of s.points) {
      const i = Math.floor((new Date(p.at).getTime() - first) / size);
      if (i < 0 || i >= count) continue;
      parts.push({ key: s.key, i, calls: p.calls });
      totals[i] += p.calls;
    }
  }
  const max = Math.max(1, ...totals);
  const W = 720;
  const H = 180;
  const bw = W / count;
  const colours = colourOf(stats.series.map((s) => s.key));
  const base = new Array(count).fill(0);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H + 20}`, width: '100%', role: 'img', 'aria-labelledby': 'calls-summary', 'data-testid': 'chart-calls' });
  chart.append(svg('line', { x1: 0, y1: H, x2: W, y2: H, stroke: '#999' }));
  for (const part of parts) {
    const height = (part.calls / max) * (H - 10);
    base[part.i] += height;
    const at = new Date(first + part.i * size);
    const until = new Date(first + (part.i + 1) * size);
    const rect = svg('rect', {
      x: part.i * bw + 1, y: H - base[part.i], width: Math.max(1, bw - 2), height,
      fill: colours.get(part.key), 'data-outcome': part.key, 'data-calls': part.calls, tabindex: 0, role: 'link',
      class: 'bar',
    }, svg('title', {}, document.createTextNode(`${part.calls} ${part.key || 'none'} from ${at.toISOString()}`)));
    const open = () => navigate(auditLink({ outcome: part.key, since: at.toISOString(), until: until.toISOString() }));
    rect.addEventListener('click', open);
    rect.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    chart.append(rect);
  }
  chart.append(svg('text', { x: 0, y: H + 15, 'font-size': 11 }, document.createTextNode(new Date(first).toISOString().slice(0, 16).replace('T', ' '))));
  chart.append(svg('text', { x: W, y: H + 15, 'font-size': 11, 'text-anchor': 'end' }, document.createTextNode('now')));
  const legend = h('ul', { class: 'legend' }, stats.series.map((s) => h('li', {},
    h('span', { class: 'swatch', style: undefined, 'data-colour': colours.get(s.key) }), `${s.key || 'none'}: ${s.total}`)));
  for (const sw of legend.querySelectorAll('.swatch')) sw.append(svg('svg', { width: 12, height: 12 }, svg('rect', { width: 12, height: 12, fill: sw.dataset.colour })));
  return [chart, legend];
}

/** Horizontal bars: one per key, with its total; each opens its records. */
function barList(series, { label, link, testid, colour = '#0072B2' }) {
  const max = Math.max(1, ...series.map((s) => s.total));
  const W = 420;
  const rows = series.slice(0, 10);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${rows.length * 22 + 4}`, width: '100%', role: 'img', 'aria-label': label, 'data-testid': testid });
  rows.forEach((s, i) => {
    const width = Math.max(2, (s.total / max) * (W - 160));
    const rect = svg('rect', { x: 150, y: i * 22 + 4, width, height: 16, fill: colour, class: 'bar', tabindex: 0, role: 'link', 'data-key': s.key },
      svg('title', {}, document.createTextNode(`${s.label}: ${s.total}`)));
    const open = () => navigate(link(s));
    rect.addEventListener('click', open);
    rect.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    chart.append(svg('text', { x: 145, y: i * 22 + 16, 'font-size': 12, 'text-anchor': 'end' }, document.createTextNode(s.label.slice(0, 22))),
      rect, svg('text', { x: 154 + width, y: i * 22 + 16, 'font-size': 12 }, document.createTextNode(String(s.total))));
  });
  return chart;
}

/**
 * A small chart of calls over the last day, one bar an hour, for a grant or a secret's page:
 * `points` from one series of `GET /stats` with hour buckets.
 */
export function sparkline(points, { to = new Date(), label, testid } = {}) {
  const hour = 3600 * 1000;
  const last = Math.floor(to.getTime() / hour) * hour;
  const counts = new Array(24).fill(0);
  for (const p of points || []) {
    const i = 23 - Math.round((last - new Date(p.at).getTime()) / hour);
    if (i >= 0 && i < 24) counts[i] += p.calls;
  }
  const max = Math.max(1, ...counts);
  const total = counts.reduce((a, b) => a + b, 0);
  const chart = svg('svg', { viewBox: '0 0 96 20', width: 96, height: 20, role: 'img', 'aria-label': `${label}: ${total} calls in the last day`, 'data-testid': testid, 'data-total': total },
    svg('title', {}, document.createTextNode(`${total} calls in the last day, by hour`)));
  counts.forEach((n, i) => {
    if (!n) return;
    const height = Math.max(1, (n / max) * 18);
    chart.append(svg('rect', { x: i * 4, y: 20 - height, width: 3, height, fill: '#0072B2' }));
  });
  return chart;
}

/** Calls by grant and principal are counted per hour: say which hours a list covers. */
function perHour(stats) {
  return h('p', { class: 'muted', 'data-testid': 'counted-since', text: `Since ${fmtTime(stats.from)} (counted by the hour).` });
}

/**
 * How much of a limit is used, as a bar: green, then orange past 70 %, vermillion past 90 %.
 * Its numbers are in the text beside it and in its accessible name.
 */
export function meter(used, max, { label, testid } = {}) {
  const share = max > 0 ? Math.min(1, Math.max(0, used / max)) : 0;
  const colour = share >= 0.9 ? '#D55E00' : share >= 0.7 ? '#E69F00' : OK;
  const chart = svg('svg', { viewBox: '0 0 60 8', width: 60, height: 8, class: 'meter', role: 'img', 'aria-label': label, 'data-testid': testid, 'data-used': used, 'data-max': max },
    svg('rect', { x: 0, y: 0, width: 60, height: 8, fill: '#E5E5E5' }));
  if (share > 0) chart.append(svg('rect', { x: 0, y: 0, width: Math.max(1, share * 60), height: 8, fill: colour }));
  return chart;
}

export async function pageOverview(ctx) {
  const range = RANGES[ctx.query.get('range')] ? ctx.query.get('range') : 'day';
  const to = new Date();
  const from = new Date(to.getTime() - RANGES[range] * 1000);
  const window = { from: from.toISOString(), to: to.toISOString() };
  const [byOutcome, byProvider, byGrant, byPrincipal, principals, secrets, grants] = await Promise.all([
    api.stats({ ...window, by: 'outcome' }),
    api.stats({ ...window, by: 'provider' }),
    api.stats({ ...window, by: 'grant' }),
    api.stats({ ...window, by: 'principal' }),
    api.principals().catch(() => []),
    api.secrets().catch(() => []),
    api.grants().catch(() => []),
  ]);
  const principalName = new Map(principals.map((p) => [p.id, p.name]));
  const secretName = new Map(secrets.map((s) => [s.id, s.name]));
  const grantLabel = new Map(grants.map((g) => [g.grant_id, `${secretName.get(g.secret_id) || shortId(g.secret_id)} → ${principalName.get(g.principal_id) || shortId(g.principal_id)}`]));

  const select = h('select', { 'data-testid': 'overview-range' },
    Object.keys(RANGES).map((r) => h('option', { value: r, text: `Last ${r}` })));
  select.value = range;
  select.addEventListener('change', () => navigate(`#/overview?range=${select.value}`));

  const total = byOutcome.total;
  const ok = (byOutcome.series.find((s) => s.key === 'ok') || { total: 0 }).total;
  const alarms = byOutcome.series.filter((s) => ALARMS.includes(s.key) && s.total > 0);
  const summary = total
    ? `${total} calls in the last ${range}: ${ok} answered by the upstream (ok), ${total - ok} ended otherwise.`
    : `No calls in the last ${range}.`;

  const outcomeRows = byOutcome.series.map((s) => h('tr', { 'data-testid': 'outcome-row', 'data-outcome': s.key },
    h('th', { scope: 'row' }, h('a', { href: auditLink({ outcome: s.key, since: window.from }), text: s.key || 'none' })),
    h('td', { text: String(s.total), 'data-col': 'calls' })));
  const providerRows = byProvider.series.map((s) => h('tr', { 'data-testid': 'provider-row', 'data-provider': s.key },
    h('th', { scope: 'row', text: s.key || 'none (refused before its secret was known)' }), h('td', { text: String(s.total), 'data-col': 'calls' })));

  const named = (stats, label) => stats.series.filter((s) => s.key).map((s) => ({ ...s, label: label(s.key) }));
  const topGrants = named(byGrant, (id) => grantLabel.get(id) || shortId(id));
  const topPrincipals = named(byPrincipal, (id) => principalName.get(id) || shortId(id));
  const providers = byProvider.series.map((s) => ({ ...s, label: s.key || 'none' }));

  const now = byOutcome.now;
  return h('section', {},
    pageHeader('Overview', 'Traffic through credgate at a glance: every data-plane call, as the audit trail records it.'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Range ', select)),
    h('p', { 'data-testid': 'overview-summary', id: 'calls-summary', text: summary }),
    alarms.length
      ? h('div', { class: 'verify bad', role: 'alert', 'data-testid': 'overview-alarms' },
        h('strong', { text: 'Needs a look: ' }), alarms.map((s) => `${s.key} ${s.total}`).join(', '), '.')
      : null,
    h('p', { class: 'muted', 'data-testid': 'overview-now', text: `Now, on the replica that answered: ${now.in_flight} of ${now.max_in_flight} calls in flight; ${now.audit_backlog} audit records waiting for the database.` }),
    h('div', { class: 'card' }, h('h2', { text: 'Calls over time, by outcome' }), ...timeChart(byOutcome),
      h('details', {}, h('summary', { text: 'The numbers' }),
        table({ caption: 'Calls by outcome', headers: ['Outcome', 'Calls'], rows: outcomeRows, testid: 'overview-outcomes', empty: 'No calls.' }))),
    h('div', { class: 'grid two' },
      h('div', { class: 'card' }, h('h2', { text: 'By provider' }),
        providers.length ? barList(providers, { label: 'Calls by provider', testid: 'chart-providers', link: () => auditLink({ since: window.from }) }) : h('p', { class: 'empty', text: 'No calls.' }),
        h('details', {}, h('summary', { text: 'The numbers' }),
          table({ caption: 'Calls by provider', headers: ['Provider', 'Calls'], rows: providerRows, testid: 'overview-providers', empty: 'No calls.' }))),
      h('div', { class: 'card' }, h('h2', { text: 'Busiest grants' }), perHour(byGrant),
        topGrants.length ? barList(topGrants, { label: 'Calls by grant', testid: 'chart-grants', colour: '#56B4E9', link: (s) => auditLink({ grant_id: s.key }) }) : h('p', { class: 'empty', text: 'No calls.' })),
      h('div', { class: 'card' }, h('h2', { text: 'Busiest principals' }), perHour(byPrincipal),
        topPrincipals.length ? barList(topPrincipals, { label: 'Calls by principal', testid: 'chart-principals', colour: '#CC79A7', link: (s) => auditLink({ principal_id: s.key }) }) : h('p', { class: 'empty', text: 'No calls.' }))));
}
