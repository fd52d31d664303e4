// The mirror-log model: dm-raid1 + region hash + dm-log-userspace (with and without
// integrated_flush) + a cmirrord-like cluster server. Kernel files followed:
// drivers/md/dm-log-userspace-base.c, dm-log-userspace-transfer.c, dm-raid1.c, dm-region-hash.c
// (v3.14.1), and lvm2 daemons/cmirrord/functions.c for the server.

import type { MState } from '../../checker/machine.js';
import type { Bounds, Instance, Model, System, Variant } from '../../checker/model.js';
import { buildMirrorLogMachine, eventAlphabet, K_STATES, L_STATES } from '../../machines/mirror-log/machine.js';
import { crashCtx, inFlightWrites, initialCtx } from '../../machines/mirror-log/logic.js';
import { cfgTag, type Cfg, type Ctx, type MirrorEv } from '../../machines/mirror-log/types.js';
import { cfgFrom, cfgsFrom, MIRROR_BOUNDS, PROFILES } from './config.js';
import { mirrorImplAdapter, projectCtx, projectionSpec } from './impl-adapter.js';
import { mirrorInvariants } from './invariants.js';
import { MIRROR_MUTANTS, MIRROR_SHIPPED } from './mutants.js';

type S = MState<Ctx>;

export { cfgFrom };

export function describeCtx(c: Ctx): string {
  const arr = (a: readonly number[]): string => a.join('');
  const reqs = c.rq.map((q) => `${q.t}${q.p.length ? '(' + q.p.join(',') + ')' : ''}#${q.s}${q.w === 'l' ? 'L' : ''}`).join(' ');
  const reps = c.rp.map((p) => `#${p.s}${p.e ? ':EIO' : ''}`).join(' ');
  return (
    `kmirrord=${K_STATES[c.kp]} dmlogd=${L_STATES[c.lz]} sched=${c.sf} rh=${c.rh} pend=${arr(c.pd)} fly=${arr(c.fly)}` +
    ` marks=[${c.ml.join(',')}] clears=[${c.cl.join(',')}]${c.f ? ` flush{sent ${c.f.log || '-'}, left ${c.f.plan.map((p) => p.t).join('') || '-'}}` : ''}` +
    ` wire=[${reqs}] replies=[${reps}] srv.marks=${arr(c.sm)} mem.clean=${arr(c.mc)} disk.clean=${arr(c.dc)} sync=${arr(c.sy)}` +
    ` peer=${arr(c.pr)} cfg=${c.cf} legsDiffer=${arr(c.dv)}${c.lf ? ' LOG_FAILURE' : ''}`
  );
}

/**
 * Canonical key: the same information as machineKey (region values and every context field) in a
 * short fixed-order string; the explorer spends most of its time hashing keys.
 */
export function compactKey(s: S): string {
  const c = s.context;
  const d = (a: readonly number[]): string => a.join('');
  const reqs = c.rq.map((q) => `${q.t}${q.w}${q.s}:${q.p.join('')}`).join(';');
  const reps = c.rp.map((p) => `${p.s}:${p.e}`).join(';');
  const f = c.f ? `${c.f.nm ? 1 : 0}${c.f.log}/${c.f.plan.map((q) => q.t + q.p.join('')).join(';')}` : '-';
  return (
    `${c.cf}${s.value.join('|')}#${c.rh} ${d(c.pd)} ${d(c.bq)} ${d(c.wq)} ${d(c.wn)} ${d(c.fly)} ${d(c.ns)} ${d(c.hb)} ${d(c.dz)} ${c.bud}` +
    ` ${d(c.ml)} ${d(c.cl)} ${f} ${c.kp}${c.ws},${c.sf}${c.lz}${c.ls},${c.unc} [${reqs}] [${reps}] ${c.seq},${c.rs}` +
    ` ${d(c.sm)} ${d(c.mc)} ${d(c.dc)} ${d(c.sy)} ${c.tc}${c.df}${c.lost} ${d(c.pr)}${c.pb} ${d(c.dv)} ${d(c.vo)} ${c.le}${c.lf}${c.lfe}${c.cr}`
  );
}

export function mirrorInstance(bounds: Bounds, variant: Variant): Instance<S, MirrorEv> {
  const cfgs = cfgsFrom(bounds, variant);
  const byTag = new Map(cfgs.map((cfg) => [cfgTag(cfg), { cfg, m: buildMirrorLogMachine(cfg), alphabet: eventAlphabet(cfg) }]));
  const pick = (c: Ctx) => {
    const x = byTag.get(c.cf);
    if (x === undefined) throw new Error(`state of configuration '${c.cf}' does not belong to this instance`);
    return x;
  };
  const cfg0 = cfgs[0]!;
  const system: System<S, MirrorEv> = {
    initial: () => cfgs.map((cfg) => pick(initialCtx(cfg)).m.initial(initialCtx(cfg))),
    events: (s) => pick(s.context).alphabet,
    step: (s, e) => pick(s.context).m.step(s, e),
    key: compactKey,
  };
  const quiescent = ({ context: c }: S): boolean =>
    c.kp === 'i' &&
    c.lz === 'i' &&
    c.rq.length === 0 &&
    c.rp.length === 0 &&
    c.fly.every((x) => x === 0) &&
    c.ns.every((x) => x === 0) &&
    c.pr.every((x) => x !== 2) &&
    c.dz.every((x) => x === 0) &&
    // bios still queued are fine only when held back by a failed log
    (c.bq.every((x) => x === 0) || c.lf === 1);
  const inst: Instance<S, MirrorEv> = {
    system,
    invariants: mirrorInvariants(cfg0.n, (c) => pick(c).cfg),
    quiescent,
    validEnd: (s) => quiescent(s) || s.context.hb.some((x) => x > 0),
    describe: (s) => describeCtx(s.context),
    valueOf: (s) => s.value.join('/'),
    project: (s) => projectCtx(s.context),
    projectionSpec,
    ...(cfg0.crashes > 0
      ? {
          crash: {
            volatileWrites: (s: S) => (s.context.cr > 0 ? inFlightWrites(pick(s.context).cfg, s.context).length : 0),
            crash: (s: S, keep: readonly number[]) =>
              s.context.cr > 0 ? { value: pick(s.context).m.initial().value, context: crashCtx(pick(s.context).cfg, s.context, keep) } : s,
          },
        }
      : {}),
    ...(cfg0.logFaults > 0
      ? {
          fault: {
            sites: (s: S) => (s.context.df === 0 ? ['log-device'] : []),
            inject: (s: S) => ({ value: s.value.map((v, i) => (i === 3 ? 'logFailed' : v)), context: { ...s.context, df: 1 } }),
          },
        }
      : {}),
  };
  return inst;
}

export const mirrorLogModel: Model<S, MirrorEv> = {
  id: 'mirror-log',
  title: 'dm-raid1 dirty log over dm-log-userspace (integrated_flush) with a cmirrord-like cluster server',
  spec: 'spec/mirror-log.md',
  profiles: PROFILES,
  defaultProfile: 'linux-3.14',
  bounds: MIRROR_BOUNDS,
  mutants: MIRROR_MUTANTS,
  shipped: MIRROR_SHIPPED,
  // Both log modes against both servers, with the dm-raid1 caller.
  machines: [0, 1].flatMap((integrated) =>
    [0, 1].map((server) => buildMirrorLogMachine(cfgFrom({ integrated, server, batch: 0 }, { profile: 'linux-3.14', mutant: null }))),
  ),
  instance: mirrorInstance,
  impl: mirrorImplAdapter,
};
