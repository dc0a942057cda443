// Summarises a V8 .cpuprofile (node --cpu-prof, or `npm run bench -- --profile`) in the terminal:
// self time by package or source file, and inclusive time of the functions that match a pattern.
//
//   npx tsx bench/profile-summary.ts bench/out/profile/CPU.*.cpuprofile [--match src/] [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    match: { type: 'string', default: '/src/' },
    top: { type: 'string', default: '25' },
  },
});
const top = Number(values.top) || 25;

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Time per sample: the delta to the next sample (V8 records deltas before each sample).
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const totalUs = profile.endTime - profile.startTime;
  let idleUs = 0;
  const bucket = new Map<string, number>();
  const functionSelf = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = place(url);
    bucket.set(where, (bucket.get(where) ?? 0) + us);
    const fn = `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
    functionSelf.set(fn, (functionSelf.get(fn) ?? 0) + us);
    // Inclusive time: once per distinct matching frame on this sample's stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame?.url.includes(values.match ?? '/src/')) continue;
      const key = `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const busyUs = totalUs - idleUs;
  const fmt = (us: number) =>
    `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busyUs).toFixed(1).padStart(5)}%`;
  const print = (title: string, map: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${fmt(v)}  ${k}`);
    }
  };
  console.log(
    `${file}\n  profiled ${(totalUs / 1e6).toFixed(1)} s, busy ${(busyUs / 1e6).toFixed(1)} s (percentages are of busy time)`,
  );
  print('self time by package / file', bucket);
  print('self time by function', functionSelf);
  print(`inclusive time of functions in files matching "${values.match}"`, inclusive);
}

function place(url: string): string {
  if (!url) return '(native / V8)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return (rest[0] ?? '').startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return url;
  return shortUrl(url);
}

function shortUrl(url: string): string {
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  return url;
}
