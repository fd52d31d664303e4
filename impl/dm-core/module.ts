// The dm-mod module reference count and unload (kernel/module.c: try_module_get, module_put,
// delete_module). rmmod succeeds only with no references; afterwards its text is gone.

export class Module {
  refs = 0;
  loaded = true;

  get(): boolean {
    if (!this.loaded) return false;
    this.refs++;
    return true;
  }

  put(): void {
    this.refs--;
  }

  /** delete_module: -EWOULDBLOCK (refused) while referenced. */
  unload(): boolean {
    if (this.refs !== 0 || !this.loaded) return false;
    this.loaded = false;
    return true;
  }
}
