// Every model the CLI, `npm run check` and the replay tests know. A protocol adds one line here.

import { asModel, type AnyModel } from '../checker/model.js';
import { bakeryModel, petersonModel, philsModel } from './beem/models.js';
import { kobjectModel } from './kobject/model.js';
import { mirrorLogModel } from './mirror-log/model.js';
import { thinMetadataModel } from './thin-metadata/model.js';
import { cacheMqModel } from './cache-mq/model.js';
import { snapshotStoreModel } from './snapshot-store/model.js';
import { thinPoolModel } from './thin-pool/model.js';

export const models: readonly AnyModel[] = [
  asModel(kobjectModel),
  asModel(mirrorLogModel),
  asModel(thinMetadataModel),
  asModel(cacheMqModel),
  asModel(snapshotStoreModel),
  asModel(thinPoolModel),
  asModel(philsModel),
  asModel(petersonModel),
  asModel(bakeryModel),
];

export function findModel(id: string): AnyModel | undefined {
  return models.find((m) => m.id === id);
}
