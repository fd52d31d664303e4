// Errors of the persistent-data layer: the kernel's negative errno values by name
// (drivers/md/persistent-data/*.c return -EILSEQ, -ENODATA, -ENOSPC, -EINVAL, -ENOMEM, -EPERM, -EIO).

export type Errno = 'EEXIST' | 'EBUSY' | 'EINVAL' | 'ENOSPC' | 'ENODATA' | 'EPERM' | 'EIO' | 'EILSEQ' | 'ENOMEM';

/** A metadata operation failed the way the kernel's would: `errno` is the negative errno's name. */
export class MetadataError extends Error {
  override readonly name = 'MetadataError';
  constructor(
    readonly errno: Errno,
    message: string,
  ) {
    super(`-${errno}: ${message}`);
  }
}
