// The write-path bench's summary (medians over rounds, ratios taken round by round) and its
// printed table; bench/write-path.mjs runs the cases.
const r3 = (n) => Math.round(n * 1000) / 1000;
const median = (xs) => {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Medians over rounds, and the ratios taken round by round. */
export function summarise(op, concurrency, runs, peerLabel) {
  const m = (key, field) => (runs[key] ? median(runs[key].map((r) => r[field])) : NaN);
  const perRound = (a, b) => (runs[a] && runs[b] ? runs[a].map((r, k) => r.opsPerSec / runs[b][k].opsPerSec) : []);
  const variant = (key) =>
    runs[key] && {
      opsPerSec: Math.round(m(key, 'opsPerSec')),
      p50Ms: r3(m(key, 'p50Ms')),
      p99Ms: Math.round(m(key, 'p99Ms') * 10) / 10,
      notices: runs[key].reduce((n, r) => n + r.notices, 0),
      noticesExpected: runs[key].reduce((n, r) => n + r.noticesExpected, 0),
      rounds: runs[key],
    };
  return {
    op,
    concurrency,
    off: variant('off'),
    on: variant('on'),
    peer: { label: peerLabel, ...variant('peer') },
    onOverOff: r3(median(perRound('on', 'off'))),
    oursOverPeer: r3(median(perRound('off', 'peer'))),
  };
}

export function formatWritePath(result) {
  const fmt = (n) => (Number.isFinite(n) ? String(n) : '—');
  const head = ['op', 'clients', 'ours ops/s', 'notify on', 'on/off', 'peer op', 'peer ops/s', 'ours/peer'];
  head.push('p99 ms ours/on/peer', 'notices');
  const rows = result.cases.map((c) => [
    c.op,
    c.concurrency,
    c.off.opsPerSec,
    fmt(c.on?.opsPerSec),
    fmt(c.on ? c.onOverOff : NaN),
    c.peer.label,
    c.peer.opsPerSec,
    c.oursOverPeer,
    `${c.off.p99Ms}/${fmt(c.on?.p99Ms)}/${c.peer.p99Ms}`,
    c.on ? `${c.on.notices}/${c.on.noticesExpected}${c.off.notices ? ` (off: ${c.off.notices})` : ''}` : '—',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells
      .map((x, i) => String(x).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const out = [`write path: ${result.method}`, `server: ${result.server.line}`, `machine: ${result.machine}`];
  out.push(line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line));
  out.push(
    'ratios: median of per-round ratios (variants interleaved ABBA); ours = notify off; notices: heard/expected with notify on.',
  );
  const bad = result.cases.filter((c) => c.on && (c.on.notices !== c.on.noticesExpected || c.off.notices !== 0));
  for (const c of bad) out.push(`FAIL  ${c.op} x${c.concurrency}: notices heard do not match the statements' changes`);
  const s = result.sizes;
  out.push(`row sizes (${s.method}):`);
  for (const t of s.tables)
    out.push(
      `  ${t.table}: ${t.rows.toLocaleString('en')} rows${t.partitions ? ` in ${t.partitions} partitions` : ''}, tuple ${t.avgTupleBytes} B, ` +
        `heap ${t.heapBytesPerRow} + indexes ${t.indexBytesPerRow} = ${t.totalBytesPerRow} B/row on disk`,
    );
  out.push(`  audit tuple bytes by event: ${JSON.stringify(s.auditTupleBytesByEvent)}`);
  return out.join('\n');
}
