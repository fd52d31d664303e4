// Hand-written reducer of BEEM peterson.1 (plug-obp/beem-benchmark,
// original-benchmark/peterson/generated_files/peterson.1.dve), for the explorer benchmark only: the
// same semantics as machines/beem/peterson.ts without a machine library. The state is one flat array
// [pc_0..pc_{N-1}, pos[0..N-1], step[0..N-1], j_0, k_0, j_1, k_1, ...]; an event is (process,
// transition number) and `step` is a switch over the transition number.

const NCS = 0, CS = 1, WAIT = 2, Q2 = 3, Q3 = 4;

export interface PEvent {
  readonly p: number;
  readonly t: number;
}

export type PState = readonly number[];

export class PetersonReducer {
  private readonly pos: number;
  private readonly stp: number;
  private readonly loc: number;
  readonly events: readonly PEvent[];

  constructor(readonly n: number) {
    this.pos = n;
    this.stp = 2 * n;
    this.loc = 3 * n;
    const ev: PEvent[] = [];
    for (let p = 0; p < n; p++) for (let t = 0; t < 7; t++) ev.push({ p, t });
    this.events = ev;
  }

  initial(): PState {
    return new Array<number>(5 * this.n).fill(0);
  }

  key(s: PState): string {
    return String.fromCharCode.apply(null, s as number[]);
  }

  step(s: PState, e: PEvent): PState | null {
    const n = this.n;
    const i = e.p;
    const pc = s[i];
    const jAt = this.loc + 2 * i;
    const kAt = jAt + 1;
    const j = s[jAt]!;
    switch (e.t) {
      case 0: {
        // NCS -> wait: j = 1
        if (pc !== NCS) return null;
        const x = s.slice();
        x[i] = WAIT;
        x[jAt] = 1;
        return x;
      }
      case 1: {
        // wait -> q2 [j < N]: pos[i] = j
        if (pc !== WAIT || j >= n) return null;
        const x = s.slice();
        x[i] = Q2;
        x[this.pos + i] = j;
        return x;
      }
      case 2: {
        // q2 -> q3: step[j-1] = i, k = 0
        if (pc !== Q2) return null;
        const x = s.slice();
        x[i] = Q3;
        x[this.stp + j - 1] = i;
        x[kAt] = 0;
        return x;
      }
      case 3: {
        // q3 -> q3 [k < N && (k == i || pos[k] < j)]: k = k + 1
        const k = s[kAt]!;
        if (pc !== Q3 || !(k < n && (k === i || s[this.pos + k]! < j))) return null;
        const x = s.slice();
        x[kAt] = k + 1;
        return x;
      }
      case 4: {
        // q3 -> wait [step[j-1] != i || k == N]: j = j + 1
        if (pc !== Q3 || !(s[this.stp + j - 1] !== i || s[kAt] === n)) return null;
        const x = s.slice();
        x[i] = WAIT;
        x[jAt] = j + 1;
        return x;
      }
      case 5: {
        // wait -> CS [j == N]
        if (pc !== WAIT || j !== n) return null;
        const x = s.slice();
        x[i] = CS;
        return x;
      }
      case 6: {
        // CS -> NCS: pos[i] = 0
        if (pc !== CS) return null;
        const x = s.slice();
        x[i] = NCS;
        x[this.pos + i] = 0;
        return x;
      }
      default:
        throw new Error(`peterson reducer: process ${i} has no transition ${e.t}`);
    }
  }
}
