// The narrow pool-metadata interface the pool target uses: the calls drivers/md/dm-thin.c makes into
// dm-thin-metadata.c (dm_thin_find_block, dm_thin_insert_block, dm_thin_remove_block,
// dm_pool_alloc_data_block, dm_pool_get_free_block_count, dm_pool_commit_metadata,
// dm_pool_abort_metadata, dm_pool_metadata_set_needs_check, dm_pool_resize_*_dev, ...).
// impl/thin/pool-metadata.ts (the byte-exact PoolMetadata) satisfies it structurally; so does the
// abstract-accounting metadata in abstract-metadata.ts that the lockstep runner uses.
// Failures are thrown as MetadataError carrying the kernel errno name.

export interface MappingLookup {
  readonly dataBlock: number;
  readonly shared: boolean;
}

export interface PoolMetadataApi {
  lookup(dev: number, vblock: number): MappingLookup | null;
  insertMapping(dev: number, vblock: number, dataBlock: number): void;
  removeMapping(dev: number, vblock: number): void;
  allocDataBlock(): number;
  freeDataBlocks(): number;
  dataDevSize(): number;
  freeMetadataBlocks(): number;
  metadataDevSize(): number;
  createThin(dev: number): void;
  createSnap(dev: number, origin: number): void;
  deleteThin(dev: number): void;
  openThin(dev: number): void;
  devices(): number[];
  resizeDataDevice(nrBlocks: number): void;
  resizeMetadataDevice(nrBlocks: number): void;
  commit(): void;
  abort(): void;
  needsCheck(): boolean;
  setNeedsCheck(): void;
  setReadOnly(): void;
  setReadWrite(): void;
  isFailed(): boolean;
  changedThisTransaction(dev?: number): boolean;
  abortedWithChanges(dev: number): boolean;
  registerMetadataThreshold(threshold: number, fn: () => void): void;
  close(): void;
}

/** Opens the pool metadata again (pool re-creation); `clearNeedsCheck` = offline thin_check --clear-needs-check-flag first. */
export type MetadataReopen = (clearNeedsCheck: boolean) => PoolMetadataApi;
