// Model of the persistent snapshot exception store (drivers/md/dm-snap-persistent.c) and the
// exception handling of drivers/md/dm-snap.c that orders its commits (Linux 3.14.1). Rules:
// spec/snapshot-store.md. Machine: machines/snapshot-store/. Impl: impl/snapshot/.

import type { Bounds, BoundSpec, Ev, ImplAdapter, Instance, Invariant, Json, Model, MutantInfo, ShippedDefect, Variant } from '../../checker/model.js';
import type { MState } from '../../checker/machine.js';
import { machineSystem } from '../../checker/compose.js';
import { Snapshot } from '../../impl/snapshot/snapshot.js';
import { isMetadataChunk } from '../../impl/snapshot/layout.js';
import { initialSnapCtx, snapCrash, snapMachine, stateOf, tableOf, type Content, type SnapCtx, type SnapEvent } from '../../machines/snapshot-store/snapshot.machine.js';

export type SnapState = MState<SnapCtx>;

export const snapBounds: Readonly<Record<string, BoundSpec>> = {
  epa: { default: 2, min: 1, max: 32, describe: 'exceptions per metadata area (the kernel has chunk bytes / 16; small = areas fill)' },
  cow: { default: 8, min: 3, max: 64, describe: 'COW device size in chunks' },
  origins: { default: 2, min: 1, max: 4, describe: 'origin chunks written (each at most once by the origin and once through the snapshot)' },
  snapWrites: { default: 0, min: 0, max: 1, describe: '1 = full-chunk writes to the snapshot are issued too' },
  copyErrors: { default: 0, min: 0, max: 2, describe: 'kcopyd copy failures the environment may inject' },
  restarts: { default: 1, min: 0, max: 3, describe: 'clean deactivate/activate cycles' },
  crashes: { default: 1, min: 0, max: 2, describe: 'power cuts (the engine enumerates which volatile writes survive)' },
  junk: { default: 1, min: 0, max: 1, describe: '1 = the COW device holds leftover data where area 1 goes (a reused LV)' },
};

export const snapMutants: readonly MutantInfo[] = [
  { id: 'origin-before-commit', title: 'the held origin write is issued when the copy finishes, before the area write with FLUSH+FUA', fix: 'synthetic, against pending_complete ordering (D-ORDER)', breaks: ['SNAP-4'], killedBy: ['explore', 'lockstep'] },
  { id: 'area-before-zero', title: 'a full area is written before the next area is zeroed', fix: 'synthetic, against persistent_commit_exception', breaks: ['SNAP-5'], killedBy: ['explore'] },
  { id: 'area-off-by-one', title: 'area_location uses a stride of epa instead of epa + 1', fix: 'synthetic, against area_location/skip_metadata', breaks: ['SNAP-4'], killedBy: ['explore', 'lockstep'] },
  { id: 'terminator-old-chunk', title: 'insert_exceptions ends an area at old_chunk == 0 instead of new_chunk == 0', fix: 'synthetic, against insert_exceptions', breaks: ['SNAP-7'], killedBy: ['explore', 'lockstep'] },
  { id: 'no-area-copy', title: 'after the bufio load ps->area is not filled from the current area', fix: '2c945820cab9 "dm snapshot: fix metadata corruption" (bug from 55494bf2947d)', breaks: ['SNAP-4'], killedBy: ['explore', 'lockstep'] },
];

export const snapShipped: readonly ShippedDefect[] = [
  {
    id: 'invalid-header-volatile',
    title: 'invalidation writes the header (valid = 0) with a plain WRITE and nothing flushes it; a power cut can bring the snapshot back as valid although origin writes went through without exceptions',
    profile: 'linux-3.14',
    fix: 'no kernel fix known (3.14.1 write_header is a plain WRITE; later kernels not checked); the fixed profile models a proposed FLUSH+FUA header write',
    breaks: ['SNAP-8'],
    killedBy: ['explore', 'lockstep'],
    bounds: { copyErrors: 1, restarts: 0 },
  },
  { id: 'copy-error-hang', title: 'after a kcopyd error the failed exception never reaches commit, pending_count stays > 0 and later exceptions never commit (hung bios)', profile: 'linux-3.14', fix: '385277bfb57f "dm snapshot: fix hung bios when copy error occurs"', breaks: ['SNAP-9'], killedBy: ['explore'], bounds: { copyErrors: 1, crashes: 0, restarts: 0 } },
];

/** Where junk lies: the correct location of area 1 (and of the area after it, if inside). */
export function junkChunks(b: Bounds): number[] {
  if (!(b['junk'] ?? 0)) return [];
  const epa = b['epa'] ?? 2;
  return [1 + (epa + 1), 1 + 2 * (epa + 1)].filter((c) => c < (b['cow'] ?? 8));
}

export function snapCtxFor(b: Bounds, v: Variant): SnapCtx {
  return initialSnapCtx({ epa: b['epa'] ?? 2, cow: b['cow'] ?? 8, origins: b['origins'] ?? 2, fixed: v.profile === 'fixed', mutant: v.mutant, junk: junkChunks(b) });
}

export function snapEvents(s: SnapState, b: Bounds): SnapEvent[] {
  const c = s.context;
  const out: SnapEvent[] = [];
  for (let ch = 0; ch < c.origin.length; ch++) {
    if ((c.g.ow[ch] ?? 0) < 1) out.push({ type: 'OW', c: ch });
    if ((b['snapWrites'] ?? 0) > 0 && (c.g.sw[ch] ?? 0) < 1) out.push({ type: 'SW', c: ch });
  }
  for (const p of c.pes) {
    if (p.st !== 'copying') continue;
    out.push({ type: 'CD', seq: p.seq });
    if (c.g.ce < (b['copyErrors'] ?? 0)) out.push({ type: 'CE', seq: p.seq });
  }
  if (c.g.restarts < (b['restarts'] ?? 1)) out.push({ type: 'RESTART' });
  return out;
}

export function projectSnap(c: SnapCtx): Json {
  return {
    state: stateOf(c),
    complete: c.complete,
    pes: c.pes.map((p) => [p.seq, p.old, p.nw, p.st, p.err, p.full, p.held]),
    seq: [c.startSeq, c.completeSeq],
    ooo: c.ooo,
    origin: c.origin,
    acked: c.acked,
    ps: [c.ps.valid, c.ps.nextFree, c.ps.area, c.ps.cc, c.ps.pc],
    volatile: c.vol.length,
  };
}

const isData = (x: Content | null | undefined, o: number, t?: 'copy' | 'snapw'): boolean =>
  !!x && x.k === 'd' && x.o === o && (t === undefined || x.t === t) && (x.t === 'snapw' || x.v === 0);

export const snapInvariants: readonly Invariant<SnapState>[] = [
  {
    spec: ['SNAP-3'],
    name: 'chunk-allocated-once',
    check: (s) => {
      const c = s.context;
      const news = [...c.complete.map(([, n]) => n), ...c.pes.map((p) => p.nw)];
      const dup = news.find((n, i) => news.indexOf(n) !== i);
      if (dup !== undefined) return `COW chunk ${dup} is given to two exceptions`;
      const olds = [...c.complete.map(([o]) => o), ...c.pes.map((p) => p.old)];
      const dupO = olds.find((o, i) => olds.indexOf(o) !== i);
      if (dupO !== undefined) return `origin chunk ${dupO} has two exceptions`;
      const meta = c.pes.find((p) => isMetadataChunk(c.epa, p.nw));
      return meta ? `exception for ${meta.old} was given metadata chunk ${meta.nw}` : null;
    },
  },
  {
    spec: ['SNAP-4'],
    name: 'origin-write-after-durable-commit',
    check: (s) => {
      const c = s.context;
      if (stateOf(c) !== 'active') return null;
      const { table } = tableOf(c.dur, c.epa);
      for (const ch of c.g.owValid) {
        const e = table.find(([o]) => o === ch);
        if (!e) return `origin chunk ${ch} was overwritten but the durable metadata has no exception for it`;
        // A chunk first written through the snapshot keeps that data; otherwise the copy of the old data.
        if (!isData(c.dur[e[1]], ch)) return `origin chunk ${ch} was overwritten but durable COW chunk ${e[1]} does not hold its snapshot data`;
      }
      for (const ch of c.acked) {
        const e = table.find(([o]) => o === ch);
        if (!e || !isData(c.dur[e[1]], ch, 'snapw')) return `snapshot write to chunk ${ch} was acknowledged but is not durable with its exception`;
      }
      return null;
    },
  },
  {
    spec: ['SNAP-5'],
    name: 'no-exception-to-unwritten-chunk',
    check: (s) => {
      const c = s.context;
      for (const [o, n] of c.complete) {
        if (n >= c.cow || isMetadataChunk(c.epa, n) || !isData(c.cur[n], o)) {
          // Records decoded from leftover data have 64-bit garbage in them; say so.
          const junk = o >= 2 ** 32 || n >= 2 ** 32 ? ' (a record decoded from leftover data in an area that was never zeroed)' : '';
          return `exception ${o}->${n} points to a chunk that does not hold origin chunk ${o}'s data${junk}`;
        }
      }
      return null;
    },
  },
  {
    spec: ['SNAP-6'],
    name: 'no-read-past-end',
    check: (s) => (s.context.g.pastEnd ? 'activation read an area beyond the end of the COW device' : null),
  },
  {
    spec: ['SNAP-7'],
    name: 'activation-reads-disk-table',
    check: (s) => s.context.g.actMismatch,
  },
  {
    spec: ['SNAP-8'],
    name: 'invalid-stays-invalid',
    check: (s) => (s.context.g.inval && stateOf(s.context) === 'active' ? 'the snapshot was invalidated but is active again' : null),
  },
];

export function snapInstance(bounds: Bounds, variant: Variant): Instance<SnapState, Ev> {
  const m = snapMachine(snapCtxFor(bounds, variant));
  const sys = machineSystem(m, (s) => snapEvents(s, bounds));
  const maxCrashes = bounds['crashes'] ?? 1;
  return {
    system: sys as Instance<SnapState, Ev>['system'],
    invariants: snapInvariants,
    quiescent: (s) => s.context.pes.length === 0,
    // Running out of events is fine in itself (bounds end every run); a bio that can never complete
    // is the progress rule SNAP-9.
    validEnd: () => true,
    progressSpec: ['SNAP-9'],
    describe: (s) => {
      const c = s.context;
      return (
        `${stateOf(c)} table={${c.complete.map(([o, n]) => `${o}->${n}`).join(',')}} pending={${c.pes.map((p) => `#${p.seq}:${p.old}->${p.nw}${p.st === 'copied' ? '✓' : ''}${p.held ? ` held${p.held}` : ''}`).join(',')}} ` +
        `area=${c.ps.area}[${c.ps.cc}] pc=${c.ps.pc} volatile=${c.vol.length} origin=[${c.origin.join(',')}]`
      );
    },
    valueOf: (s) => s.value.join('|'),
    project: (s) => projectSnap(s.context),
    crash: {
      volatileWrites: (s) => (s.context.g.crashes < maxCrashes ? s.context.vol.length : 0),
      // Past the crash budget the operator is disabled (null), so bounded runs stay finite.
      crash: (s, keep) => {
        if (s.context.g.crashes >= maxCrashes) return null as unknown as SnapState;
        const context = snapCrash(s.context, keep);
        return { value: [stateOf(context)], context };
      },
    },
  };
}

export const snapImpl: ImplAdapter<Ev> = {
  create: (variant, bounds) => {
    const snap = new Snapshot({ cowChunks: bounds['cow'] ?? 8, epa: bounds['epa'] ?? 2, variant, junk: junkChunks(bounds) });
    const origins = bounds['origins'] ?? 2;
    return {
      apply: (e) => {
        const ev = e as SnapEvent | { type: '@crash'; keep: number[]; torn: number | null };
        switch (ev.type) {
          case 'OW':
            return snap.originWrite(ev.c);
          case 'SW':
            snap.snapWrite(ev.c);
            return;
          case 'CD':
            return snap.copyDone(ev.seq, false);
          case 'CE':
            return snap.copyDone(ev.seq, true);
          case 'RESTART':
            return snap.restart();
          case '@crash':
            return snap.crash(ev.keep, ev.torn);
        }
      },
      project: () => {
        const st = snap.store;
        const pes = [...snap.pending.values()].sort((a, b) => a.seq - b.seq);
        return {
          state: snap.activationError !== 0 ? 'failed' : snap.valid ? 'active' : 'invalid',
          complete: [...snap.complete.entries()].sort((a, b) => a[0] - b[0]),
          pes: pes.map((p) => [p.seq, p.old, p.nw, p.state, p.copyError, p.full, p.originHeld]),
          seq: [snap.startSeq, snap.completeSeq],
          ooo: snap.outOfOrder.map((p) => p.seq),
          origin: Array.from({ length: origins }, (_, i) => snap.origin.get(i) ?? 0),
          acked: [...snap.acked].sort((a, b) => a - b),
          ps: [st.valid, st.nextFree, st.currentArea, st.currentCommitted, st.pendingCount],
          volatile: snap.dev.volatileWrites().length,
        };
      },
      selfCheck: () => {
        const a = snap.store.lastActivation;
        if (a && a.heldAtEnd !== 0) return { spec: ['SNAP-6'], message: `activation left ${a.heldAtEnd} bufio buffer(s) held` };
        return null;
      },
    };
  },
  isExternal: () => true,
};

export const snapshotStoreModel: Model<SnapState, Ev> = {
  id: 'snapshot-store',
  title: 'persistent snapshot exception store on dm-bufio, commit ordering and crashes (3.14)',
  spec: 'spec/snapshot-store.md',
  profiles: ['linux-3.14', 'fixed'],
  defaultProfile: 'linux-3.14',
  bounds: snapBounds,
  mutants: snapMutants,
  shipped: snapShipped,
  machines: [snapMachine(initialSnapCtx({ epa: 2, cow: 8, origins: 2, fixed: false, mutant: null, junk: [] }))],
  instance: snapInstance,
  impl: snapImpl,
  commands: (s, b) => snapEvents(s, b),
};
