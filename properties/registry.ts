// Every model the CLI, `npm run check` and the replay tests know. A protocol adds one line here.

import type { AnyModel } from '../checker/model.js';

export const models: readonly AnyModel[] = [
  // one entry per model, e.g. asModel(kobjectModel)
];
