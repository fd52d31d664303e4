// Every registered model keeps its states as JSON data: the explorer stores a state as units and
// decodes it again when it expands it (checker/state-store.ts), so a context holding undefined,
// NaN, Infinity, a Map or a Set would come back changed and be explored with other futures.
import { describe, expect, it } from 'vitest';
import { boundsWithDefaults } from '../checker/model.js';
import { models } from './registry.js';

describe('registered models', () => {
  for (const model of models) {
    it(`${model.id}: initial states are JSON data and survive the state store's encode and decode`, () => {
      const sys = model.instance(boundsWithDefaults(model), { profile: model.defaultProfile, mutant: null }).system;
      for (const s of sys.initial()) {
        // MachineState carries private region indices; compare what JSON sees.
        expect(JSON.parse(JSON.stringify(s))).toEqual(s);
        if (sys.units?.of !== sys.key) continue;
        let out = new Uint16Array(64);
        let n = sys.units.encode(s, out);
        if (n > out.length) {
          out = new Uint16Array(n);
          n = sys.units.encode(s, out);
        }
        if (n < 0) continue; // identified by its key, kept as the object itself
        const back = sys.units.decode(out, 0);
        expect(sys.key(back)).toBe(sys.key(s));
        expect(JSON.stringify(back)).toBe(JSON.stringify(s));
      }
    });
  }
});
