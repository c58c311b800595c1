;; A stand-in for the WASI preview1 adapter, used by `sluice plugin build` for Go plugins
;; (`wasm-tools component new --adapt wasi_snapshot_preview1=<this>`).
;;
;; The Go runtime calls WASI at startup and during GC (clock_time_get, random_get,
;; args/environ sizes, fd_prestat_get, poll_oneoff, fd_write for panics). The sluice host
;; links every non-sluice import as a trap, so instead of the real adapter (which would
;; import wasi:clocks, wasi:random, wasi:cli, ...) this module answers those calls itself:
;; a virtual clock, deterministic random bytes, no args, no environment, no files
;; (EBADF/ENOSYS), and writes that are discarded. The resulting component imports only
;; sluice:plugin/*.
;;
;; `sluice plugin build` assembles it with `wasm-tools parse`. Every preview1 function is
;; here, so whatever subset a Go version imports is covered.
(module
  (import "env" "memory" (memory 0))
  (global $now (mut i64) (i64.const 0))
  (global $rng (mut i64) (i64.const 0x2545f4914f6cdd1d))
  (func (export "args_get") (param i32) (param i32) (result i32)
    ;; Zero entries (the sizes above are 0): nothing to write.
    (i32.const 0))
  (func (export "args_sizes_get") (param i32) (param i32) (result i32)
    (i32.store (local.get 0) (i32.const 0))
    (i32.store (local.get 1) (i32.const 0))
    (i32.const 0))
  (func (export "environ_get") (param i32) (param i32) (result i32)
    ;; Zero entries (the sizes above are 0): nothing to write.
    (i32.const 0))
  (func (export "environ_sizes_get") (param i32) (param i32) (result i32)
    (i32.store (local.get 0) (i32.const 0))
    (i32.store (local.get 1) (i32.const 0))
    (i32.const 0))
  (func (export "clock_res_get") (param i32) (param i32) (result i32)
    (i64.store (local.get 1) (i64.const 1000))
    (i32.const 0))
  (func (export "clock_time_get") (param i32) (param i64) (param i32) (result i32)
;; A virtual clock: starts at 0 and advances 1 µs per reading.
    (global.set $now (i64.add (global.get $now) (i64.const 1000)))
    (i64.store (local.get 2) (global.get $now))
    (i32.const 0))
  (func (export "fd_advise") (param i32) (param i64) (param i64) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_allocate") (param i32) (param i64) (param i64) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_close") (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_datasync") (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_fdstat_get") (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_fdstat_set_flags") (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_fdstat_set_rights") (param i32) (param i64) (param i64) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_filestat_get") (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_filestat_set_size") (param i32) (param i64) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_filestat_set_times") (param i32) (param i64) (param i64) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_pread") (param i32) (param i32) (param i32) (param i64) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_prestat_get") (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF: no preopened directories
  )
  (func (export "fd_prestat_dir_name") (param i32) (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_pwrite") (param i32) (param i32) (param i32) (param i64) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_read") (param i32) (param i32) (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_readdir") (param i32) (param i32) (param i32) (param i64) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_renumber") (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_seek") (param i32) (param i64) (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_sync") (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_tell") (param i32) (param i32) (result i32)
    (i32.const 8) ;; EBADF
  )
  (func (export "fd_write") (param i32) (param i32) (param i32) (param i32) (result i32)
;; Discards the bytes but reports them written (the SDK logs panics through sluice:plugin/log).
    (local $i i32) (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get 2)))
        (local.set $n (i32.add (local.get $n)
          (i32.load offset=4 (i32.add (local.get 1) (i32.shl (local.get $i) (i32.const 3))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store (local.get 3) (local.get $n))
    (i32.const 0))
  (func (export "path_create_directory") (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_filestat_get") (param i32) (param i32) (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_filestat_set_times") (param i32) (param i32) (param i32) (param i32) (param i64) (param i64) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_link") (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_open") (param i32) (param i32) (param i32) (param i32) (param i32) (param i64) (param i64) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_readlink") (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_remove_directory") (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_rename") (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_symlink") (param i32) (param i32) (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "path_unlink_file") (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "poll_oneoff") (param i32) (param i32) (param i32) (param i32) (result i32)
;; Nothing to wait for: report no events (the virtual clock advances on every reading).
    (i32.store (local.get 3) (i32.const 0))
    (i32.const 0))
  (func (export "proc_exit") (param i32)
    unreachable)
  (func (export "proc_raise") (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "sched_yield") (result i32)
    (i32.const 0))
  (func (export "random_get") (param i32) (param i32) (result i32)
;; Deterministic xorshift64 bytes (seeds Go's map hashing; not for cryptography).
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get 1)))
        (global.set $rng (i64.xor (global.get $rng) (i64.shl (global.get $rng) (i64.const 13))))
        (global.set $rng (i64.xor (global.get $rng) (i64.shr_u (global.get $rng) (i64.const 7))))
        (global.set $rng (i64.xor (global.get $rng) (i64.shl (global.get $rng) (i64.const 17))))
        (i32.store8 (i32.add (local.get 0) (local.get $i)) (i32.wrap_i64 (global.get $rng)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))
  (func (export "sock_accept") (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "sock_recv") (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "sock_send") (param i32) (param i32) (param i32) (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
  (func (export "sock_shutdown") (param i32) (param i32) (result i32)
    (i32.const 52) ;; ENOSYS
  )
)
